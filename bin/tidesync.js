#!/usr/bin/env node
// Runs the compiled CLI; `npm run build` (or `npm run demo`) produces dist/.
require('../dist/src/cli.js');
