// Parse and validate AsyncAPI documents with the official parser
// (@asyncapi/parser, installed by ./dev test into .cache/; found through
// NODE_PATH). One process for several documents: loading the parser is most
// of the cost. Prints, per document, its diagnostics and what it declares, as
// one JSON list.
const { Parser, fromFile } = require('@asyncapi/parser');

async function check(parser, path) {
  const { document, diagnostics } = await fromFile(parser, path).parse();
  return {
    path,
    parsed: Boolean(document),
    errors: diagnostics.filter((d) => d.severity === 0)
      .map((d) => ({ code: d.code, message: d.message, path: d.path })),
    warnings: diagnostics.filter((d) => d.severity === 1).map((d) => d.message),
    channels: document ? document.channels().all().map((c) => c.address()) : [],
    messages: document ? document.allMessages().all().map((m) => m.name()) : [],
  };
}

async function main(paths) {
  const parser = new Parser();
  const results = [];
  for (const path of paths) results.push(await check(parser, path));
  console.log(JSON.stringify(results));
}

main(process.argv.slice(2)).then(() => process.exit(0), (error) => {
  console.error(error);
  process.exit(2);
});
