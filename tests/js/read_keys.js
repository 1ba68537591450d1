// node tests/js/read_keys.js SITE...: the schema paths of every data key the explorer page
// reads while every run, row, image and cell of each site is selected, as a JSON list.
"use strict";

const { openPage, visitEverything } = require("./page_harness.js");

(async () => {
  const read = new Set();
  for (const site of process.argv.slice(2)) {
    const { page, problem } = await openPage(site, read);
    if (problem) throw new Error(`${site}: the page says: ${problem}`);
    visitEverything(page, site);
  }
  process.stdout.write(JSON.stringify([...read].sort()) + "\n");
})().catch((error) => { console.error(error.stack || String(error)); process.exit(1); });
