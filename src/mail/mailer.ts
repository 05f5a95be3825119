import { mkdirSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import nodemailer from 'nodemailer'
import type { Config } from '../config.ts'
import type { Logger } from '../lib/log.ts'

export interface OutgoingMail {
  to: string
  subject: string
  text: string
  /** The one-time code, kept apart so the development mail directory is easy to read. */
  code: string
}

export interface Mailer {
  send(mail: OutgoingMail): Promise<void>
}

/** SMTP through nodemailer when `SMTP_URL` is set. */
class SmtpMailer implements Mailer {
  private readonly transport: nodemailer.Transporter
  constructor(
    url: string,
    private readonly from: string,
  ) {
    this.transport = nodemailer.createTransport(url)
  }
  async send(mail: OutgoingMail): Promise<void> {
    await this.transport.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text })
  }
}

/**
 * Development mail: one JSON file `{to, subject, text, code, sent_at}` per email in `MAIL_DIR`,
 * written atomically (temp file + rename) so a reader never sees half a file.
 */
class DirectoryMailer implements Mailer {
  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {
    mkdirSync(dir, { recursive: true })
  }
  async send(mail: OutgoingMail): Promise<void> {
    const sentAt = new Date()
    const name = `${sentAt.getTime()}-${randomBytes(4).toString('hex')}.json`
    const body = JSON.stringify({ ...mail, sent_at: sentAt.toISOString() }, null, 2)
    const tmp = join(this.dir, `.${name}.tmp`)
    writeFileSync(tmp, body)
    renameSync(tmp, join(this.dir, name))
    this.log.info({ to: mail.to, subject: mail.subject, file: join(this.dir, name) }, 'mail written to MAIL_DIR')
  }
}

export function createMailer(config: Config, log: Logger): Mailer {
  return config.smtpUrl ? new SmtpMailer(config.smtpUrl, config.mailFrom) : new DirectoryMailer(config.mailDir, log)
}
