// Mocha's spec reporter, plus the plain closing line CI reads: "N passed, N failed".
'use strict'
const Mocha = require('mocha')
const { Spec } = Mocha.reporters
const { EVENT_RUN_END } = Mocha.Runner.constants

class SpecWithSummary extends Spec {
  constructor(runner, options) {
    super(runner, options)
    runner.once(EVENT_RUN_END, () => {
      const { passes = 0, failures = 0, pending = 0 } = runner.stats || {}
      // Registered after Spec's own epilogue, so this is the very last line.
      process.stdout.write(
        `${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`,
      )
    })
  }
}
module.exports = SpecWithSummary
