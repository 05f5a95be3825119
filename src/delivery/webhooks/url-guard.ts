import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'

/*
 * Where a webhook may point. A webhook is a request this server makes on an agent's behalf, so
 * without a guard any agent could make it probe the operator's network (SSRF): loopback, private
 * ranges, link-local (cloud metadata at 169.254.169.254), CGNAT and the rest are refused unless
 * the operator allows them. The check runs on the resolved addresses, at creation and again at
 * every delivery (a name may resolve elsewhere later: DNS rebinding), and the delivery connects to
 * the address that was checked.
 */

export type Verdict = { ok: true; url: URL; address: string; family: 4 | 6 } | { ok: false; rule: string }

function v4Parts(ip: string): number[] {
  return ip.split('.').map(Number)
}

/** The rule a v4 address breaks, or null when it is public. */
function v4Rule(ip: string): string | null {
  const [a, b] = v4Parts(ip) as [number, number]
  if (a === 127) return 'loopback'
  if (a === 0) return 'unspecified ("this network")'
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private'
  if (a === 169 && b === 254) return 'link-local (cloud metadata)'
  if (a === 100 && b >= 64 && b <= 127) return 'CGNAT (shared address space)'
  if (a === 192 && b === 0 && v4Parts(ip)[2] === 0) return 'IETF protocol assignments'
  if (a === 198 && (b === 18 || b === 19)) return 'benchmarking'
  if (a >= 224) return 'multicast or reserved'
  return null
}

/** Expands an IPv6 address to eight 16-bit groups. */
function v6Groups(ip: string): number[] {
  let s = ip.toLowerCase().split('%')[0]!
  // A trailing dotted quad (::ffff:1.2.3.4) becomes two groups.
  const quad = s.match(/(\d+\.\d+\.\d+\.\d+)$/)
  if (quad) {
    const [a, b, c, d] = v4Parts(quad[1]!) as [number, number, number, number]
    s = s.slice(0, -quad[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = s.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail !== undefined && tail !== '' ? tail.split(':') : []
  const fill = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : []
  return [...h, ...fill, ...t].map((g) => parseInt(g || '0', 16))
}

function v6Rule(ip: string): string | null {
  const g = v6Groups(ip)
  const embeddedV4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`
  if (g.every((x) => x === 0)) return 'unspecified'
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback'
  // IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry a v4 address: judge that one.
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return v4Rule(embeddedV4(g[6]!, g[7]!))
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4Rule(embeddedV4(g[6]!, g[7]!))
  if ((g[0]! & 0xfe00) === 0xfc00) return 'private (unique local)'
  if ((g[0]! & 0xffc0) === 0xfe80) return 'link-local'
  if ((g[0]! & 0xff00) === 0xff00) return 'multicast'
  return null
}

/** Why an address may not be reached, or null when it may. */
export function addressRule(ip: string): string | null {
  const family = isIP(ip)
  if (family === 4) return v4Rule(ip)
  if (family === 6) return v6Rule(ip)
  return 'not an IP address'
}

/**
 * Parse and check a webhook target. `allowPrivate` (WEBHOOK_ALLOW_PRIVATE=1) lifts the address
 * rules, never the scheme rule. Every resolved address must pass: a name with one public and one
 * private address is refused.
 */
export async function checkTarget(raw: string, allowPrivate: boolean, resolve = lookupAll): Promise<Verdict> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return { ok: false, rule: 'url must be an absolute URL' }
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, rule: 'url must use http or https' }
  if (url.username || url.password) return { ok: false, rule: 'url must not carry credentials' }
  const host = url.hostname.replace(/^\[|\]$/g, '')
  let addresses: { address: string; family: number }[]
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }]
  else {
    try {
      addresses = await resolve(host)
    } catch {
      return { ok: false, rule: `url host ${host} does not resolve` }
    }
  }
  if (addresses.length === 0) return { ok: false, rule: `url host ${host} does not resolve` }
  if (!allowPrivate) {
    for (const a of addresses) {
      const rule = addressRule(a.address)
      if (rule) return { ok: false, rule: `url resolves to a ${rule} address (${a.address}); set WEBHOOK_ALLOW_PRIVATE=1 to allow it` }
    }
  }
  const first = addresses[0]!
  return { ok: true, url, address: first.address, family: first.family === 6 ? 6 : 4 }
}

async function lookupAll(host: string): Promise<{ address: string; family: number }[]> {
  return lookup(host, { all: true, verbatim: true })
}
