// The VS Code client of `autodp lsp`: starts the server over stdio for .dp files.
"use strict";
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("autodp").get("command", ["autodp", "lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  const config = vscode.workspace.getConfiguration("autodp");
  client = new LanguageClient("autodp", "autodp", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "dp" }, { scheme: "untitled", language: "dp" }],
    // the input columns: a data file's (relative to the workspace) or a list, as `autodp lint --data/--columns`
    initializationOptions: { data: config.get("data", ""), columns: config.get("columns", "") },
  });
  context.subscriptions.push(client);
  return client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `autodp: cannot start \`${[command, ...args].join(" ")}\` (${err.message}). ` +
      "Install it with `pip install 'autodp[lsp]'` or set `autodp.command`.");
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
