// Prints the README's configuration table, generated from src/config.ts; `--write` updates README.md
// between the config markers.
import { readFileSync, writeFileSync } from 'node:fs'
import { configMarkdownTable } from '../src/config.ts'

const table = configMarkdownTable()
if (process.argv.includes('--write')) {
  const path = new URL('../README.md', import.meta.url)
  const readme = readFileSync(path, 'utf8')
  const next = readme.replace(/<!-- config:start -->[\s\S]*<!-- config:end -->/, `<!-- config:start -->\n${table}\n<!-- config:end -->`)
  writeFileSync(path, next)
} else {
  console.log(table)
}
