// Mocha's spec reporter, plus what CI reads at the very end: one line per failed test
// ("FAILED: <full title> — <first line of the error>", so a run whose log is cut to its
// tail still names what failed) and the plain closing line "N passed, N failed".
'use strict'
const Mocha = require('mocha')
const { Spec } = Mocha.reporters
const { EVENT_RUN_END, EVENT_TEST_FAIL } = Mocha.Runner.constants

function firstLine(err) {
  const text = String((err && (err.message || err)) || 'failed')
  const line = text.split('\n').find((l) => l.trim() !== '') || text
  return line.length > 300 ? `${line.slice(0, 300)}…` : line
}

class SpecWithSummary extends Spec {
  constructor(runner, options) {
    super(runner, options)
    const failed = []
    runner.on(EVENT_TEST_FAIL, (test, err) => {
      failed.push(`FAILED: ${test.fullTitle()} — ${firstLine(err)}`)
    })
    runner.once(EVENT_RUN_END, () => {
      const { passes = 0, failures = 0, pending = 0 } = runner.stats || {}
      // Registered after Spec's own epilogue, so these are the very last lines.
      for (const line of failed) process.stdout.write(`${line}\n`)
      process.stdout.write(
        `${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`,
      )
    })
  }
}
module.exports = SpecWithSummary
