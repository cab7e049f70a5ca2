#!/usr/bin/env node
// Runs the compiled CLI; `npm run build` (or `npm pack`, or `npm run demo`) produces dist/.
require('../dist/cli.js');
