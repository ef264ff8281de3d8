/**
 * The two ways `check` prints its report: a table for people, JSON for scripts.
 */
import type { CheckReport } from './check.js'

const MARK = { pass: 'PASS', fail: 'FAIL', warn: 'WARN', skip: 'SKIP' } as const

/** The report as a table: one line per finding, then the totals. */
export function formatTable(report: CheckReport): string {
  const idWidth = Math.max(5, ...report.findings.map((f) => f.id.length))
  const lines = [`agentpress-mock check ${report.target}`, '']
  lines.push(`${'RESULT'.padEnd(6)}  ${'PROBE'.padEnd(idWidth)}  WHAT WAS SENT → WHAT CAME BACK`)
  for (const finding of report.findings) {
    lines.push(
      `${MARK[finding.result].padEnd(6)}  ${finding.id.padEnd(idWidth)}  ${finding.title} → ${finding.detail}`,
    )
  }
  const { pass, fail, warn, skip } = report.summary
  lines.push(
    '',
    `${pass} passed, ${fail} failed, ${warn} warning(s), ${skip} skipped; ` +
      `${report.requests} request(s) in ${report.durationMs} ms`,
  )
  return `${lines.join('\n')}\n`
}

/** The report as one JSON document. */
export function formatJson(report: CheckReport): string {
  return `${JSON.stringify(report, null, 2)}\n`
}
