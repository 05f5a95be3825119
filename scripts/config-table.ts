// Prints the README's configuration table, generated from src/config.ts.
import { configMarkdownTable } from '../src/config.ts'
console.log(configMarkdownTable())
