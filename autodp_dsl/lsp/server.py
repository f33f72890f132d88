"""The language server: ``analysis`` mapped onto the Language Server Protocol with pygls.

Diagnostics are what `autodp lint` reports, checked in a worker thread after the document has been
still for ``debounce`` seconds (a newer version cancels an older check's publication), with a time
limit per check. Requests (hover, completion, ...) read an ``Analysis`` made once per document
version. Positions go through the document's position codec, so columns are right in the client's
units (UTF-16 by default) on lines with non-ASCII text.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import asdict

from lsprotocol import types as T
from pygls.lsp.server import LanguageServer

from ..default_registry import registry
from ..diagnostics import Diagnostic, Severity
from ..edits import MACHINE
from . import analysis as A

__all__ = ["build_server"]

_KINDS = {
    "operator": T.CompletionItemKind.Function,
    "signal": T.CompletionItemKind.Method,
    "column": T.CompletionItemKind.Field,
    "parameter": T.CompletionItemKind.Property,
    "value": T.CompletionItemKind.EnumMember,
    "keyword": T.CompletionItemKind.Keyword,
    "type": T.CompletionItemKind.TypeParameter,
}


_PLACEHOLDER = re.compile(r"\$\{\d+:?([^}]*)\}")


class DpServer(LanguageServer):
    def __init__(self, debounce: float, check_timeout: float, columns=None):
        super().__init__("autodp", "0.1.0", text_document_sync_kind=T.TextDocumentSyncKind.Incremental)
        self.debounce = debounce
        self.check_timeout = check_timeout
        self.columns = columns  # the input columns given on the command line (--data / --columns), else the document's
        self.latest: dict[str, int] = {}  # uri -> the newest version seen (a stale check is not published)
        self.analyses: dict[str, tuple[int | None, str, A.Analysis]] = {}

    # ------------------------------------------------------------ documents

    def analysis(self, uri: str) -> tuple[object, A.Analysis]:
        doc = self.workspace.get_text_document(uri)
        source = doc.source
        if A.not_text(source):  # answer nothing about bytes: the reply could not even be encoded
            source = ""
        cached = self.analyses.get(uri)
        if cached is None or cached[0] != doc.version or cached[1] is not source:
            try:
                a = A.analyze(source, self.columns)
            except Exception:  # a bug in the analysis must not end the session: answer from the text alone
                a = A.Analysis(source, A.split_lines(source))
            self.analyses[uri] = cached = (doc.version, source, a)
        return doc, cached[2]

    def to_client(self, doc, line: int, col: int) -> T.Position:
        lines = doc.lines
        if not lines:
            return T.Position(0, 0)
        line = min(max(line, 0), len(lines) - 1)
        col = min(max(col, 0), len(lines[line].rstrip("\r\n")))
        return self.workspace.position_codec.position_to_client_units(lines, T.Position(line=line, character=col))

    def from_client(self, doc, pos: T.Position) -> tuple[int, int]:
        lines = doc.lines
        if not lines:
            return 0, 0
        p = self.workspace.position_codec.position_from_client_units(lines, pos)
        return p.line, p.character

    def range_of(self, doc, line: int, col: int, end_line: int, end_col: int) -> T.Range:
        return T.Range(start=self.to_client(doc, line, col), end=self.to_client(doc, end_line, end_col))

    # ------------------------------------------------------------ diagnostics

    def lsp_diagnostics(self, doc, diags: list[Diagnostic]) -> list[T.Diagnostic]:
        lines = A.split_lines(doc.source)
        return [self.lsp_diagnostic(doc, d, lines) for d in diags]

    def lsp_diagnostic(self, doc, d: Diagnostic, lines: list[str]) -> T.Diagnostic:
        line = min(max(d.line - 1, 0), len(lines) - 1)
        text = lines[line]
        start = min(max(d.column - 1, 0), len(text))
        if d.end_column and d.end_column > d.column:
            end = d.end_column - 1
        else:  # no span: the token at the position
            m = re.match(r"\S+", text[start:])
            end = start + (len(m.group(0)) if m else 0)
        message = d.message + "".join(f"\nhelp: {h}" for h in d.hints)
        return T.Diagnostic(
            range=self.range_of(doc, line, start, line, end),
            message=message,
            severity=T.DiagnosticSeverity.Error if d.severity == Severity.ERROR else T.DiagnosticSeverity.Warning,
            code=d.code,
            source="autodp",
            data={"fixes": [asdict(f) for f in d.fixes]} if d.fixes else None,
        )

    async def check_later(self, uri: str, version: int | None, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if self.latest.get(uri) != version:
            return  # a newer change is pending: its own check will publish
        doc = self.workspace.get_text_document(uri)
        source = doc.source
        try:
            diags = await asyncio.wait_for(asyncio.to_thread(A.diagnostics, source, _path(uri), self.columns), self.check_timeout)
        except TimeoutError:
            diags = [Diagnostic("limit-exceeded", f"checking took longer than {self.check_timeout:g} s; "
                                "run `autodp lint` on this file", 1, 1, severity=Severity.WARNING)]
        except Exception as e:  # a bug in the checker: say so in the editor (as the CLI's one line does), keep serving
            diags = [Diagnostic("internal-error", f"internal error while checking: {type(e).__name__}: {e}", 1, 1)]
        if self.latest.get(uri) != version:
            return
        doc = self.workspace.get_text_document(uri)
        if doc.source is not source:
            return
        self.text_document_publish_diagnostics(
            T.PublishDiagnosticsParams(uri=uri, version=version, diagnostics=self.lsp_diagnostics(doc, diags)))

    def schedule(self, uri: str, version: int | None, delay: float) -> None:
        self.latest[uri] = version
        asyncio.get_running_loop().create_task(self.check_later(uri, version, delay))


def _path(uri: str) -> str | None:
    from pygls.uris import to_fs_path

    try:
        return to_fs_path(uri)
    except Exception:
        return None


def build_server(debounce: float = 0.15, check_timeout: float = 5.0, columns=None) -> DpServer:
    registry()  # load the operator catalog once, before worker threads read it
    server = DpServer(debounce, check_timeout, columns)

    @server.feature(T.INITIALIZE)
    def initialize(ls: DpServer, params: T.InitializeParams):
        """``initializationOptions`` {"data": PATH} or {"columns": "name:type,..."}: the editor's
        settings for the input columns (as `--data` / `--columns`; the command line wins)."""
        opts = params.initialization_options if isinstance(params.initialization_options, dict) else {}
        if ls.columns is not None or not (opts.get("data") or opts.get("columns")):
            return
        from types import SimpleNamespace

        from ..commands.language import columns_from_args

        data = opts.get("data")
        if isinstance(data, str) and data and not os.path.isabs(data) and params.root_uri:
            data = os.path.join(_path(params.root_uri) or "", data)  # relative to the workspace
        columns, err = columns_from_args(SimpleNamespace(data=data if isinstance(data, str) else None,
                                                columns=opts.get("columns") if isinstance(opts.get("columns"), str) else None))
        if err:
            ls.window_show_message(T.ShowMessageParams(type=T.MessageType.Error, message=f"autodp: {err}"))
        ls.columns = columns

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: DpServer, params: T.DidOpenTextDocumentParams):
        ls.schedule(params.text_document.uri, params.text_document.version, 0)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: DpServer, params: T.DidChangeTextDocumentParams):
        ls.schedule(params.text_document.uri, params.text_document.version, ls.debounce)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    async def did_save(ls: DpServer, params: T.DidSaveTextDocumentParams):
        uri = params.text_document.uri
        ls.schedule(uri, ls.workspace.get_text_document(uri).version, 0)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: DpServer, params: T.DidCloseTextDocumentParams):
        uri = params.text_document.uri
        ls.latest.pop(uri, None)
        ls.analyses.pop(uri, None)
        ls.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    def hover(ls: DpServer, params: T.HoverParams):
        doc, a = ls.analysis(params.text_document.uri)
        line, col = ls.from_client(doc, params.position)
        found = A.hover(a, line, col)
        if found is None:
            return None
        text, start, end = found
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text), range=ls.range_of(doc, line, start, line, end))

    @server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[".", "(", ",", "=", " ", '"']))
    def completion(ls: DpServer, params: T.CompletionParams):
        doc, a = ls.analysis(params.text_document.uri)
        line, col = ls.from_client(doc, params.position)
        items = A.complete(a, line, col)
        before = a.lines[line][:col] if line < len(a.lines) else ""
        prefix = re.search(r"[\w.]*$", before[-A.MAX_LINE:]).group(0)
        edit_range = ls.range_of(doc, line, col - len(prefix), line, col)
        caps = ls.client_capabilities.text_document
        snippets = bool(caps and caps.completion and caps.completion.completion_item and caps.completion.completion_item.snippet_support)
        out = []
        for it in items:
            snippet = it.insert is not None and "$" in it.insert
            if snippet and not snippets:  # a client without snippets gets the text without placeholders
                it = A.Completion(it.label, it.kind, it.detail, _PLACEHOLDER.sub(r"\1", it.insert), it.doc)
                snippet = False
            out.append(T.CompletionItem(
                label=it.label, kind=_KINDS.get(it.kind), detail=it.detail or None,
                documentation=it.doc or None,
                text_edit=T.TextEdit(edit_range, it.insert if it.insert is not None else it.label),
                insert_text_format=T.InsertTextFormat.Snippet if snippet else T.InsertTextFormat.PlainText,
            ))
        return T.CompletionList(is_incomplete=False, items=out)

    @server.feature(T.TEXT_DOCUMENT_SIGNATURE_HELP, T.SignatureHelpOptions(trigger_characters=["(", ","], retrigger_characters=["="]))
    def signature_help(ls: DpServer, params: T.SignatureHelpParams):
        doc, a = ls.analysis(params.text_document.uri)
        line, col = ls.from_client(doc, params.position)
        before = a.lines[line][:col] if line < len(a.lines) else ""
        call = A.call_context(A.step_body(before))
        spec = registry().spec(call.name) if call else None
        if spec is None:
            return None
        params_info = [T.ParameterInformation(label=span) for span in A.signature_parts(spec.signature)]
        sig = T.SignatureInformation(label=spec.signature, parameters=params_info)
        return T.SignatureHelp(signatures=[sig], active_signature=0, active_parameter=A.active_parameter(spec, call))

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: DpServer, params: T.DefinitionParams):
        doc, a = ls.analysis(params.text_document.uri)
        line, col = ls.from_client(doc, params.position)
        w = A.word_at(a.lines[line] if line < len(a.lines) else "", col)
        c = a.column(w[0], line) if w else None
        if c is None or c.line < 0:
            return None
        return T.Location(uri=params.text_document.uri, range=ls.range_of(doc, c.line, c.col, c.line, c.end_col))

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def symbols(ls: DpServer, params: T.DocumentSymbolParams):
        doc, a = ls.analysis(params.text_document.uri)

        def sym(raw) -> T.DocumentSymbol:
            line, col = raw.loc.line - 1, raw.loc.col - 1
            width = len(raw.text) if raw.loc.exact else len(a.lines[line]) - col if line < len(a.lines) else 0
            r = ls.range_of(doc, line, col, line, col + max(width, 0))
            label = f"{raw.kind}: {raw.text}" if raw.kind != "call" else raw.text
            kind = T.SymbolKind.Function if raw.kind == "call" else T.SymbolKind.Boolean if raw.kind == "filter" else T.SymbolKind.Namespace
            return T.DocumentSymbol(name=f"{raw.path}  {label[:120]}", kind=kind, range=r, selection_range=r,
                                    children=[sym(c) for c in raw.children] or None)

        return [sym(s) for s in a.top]

    @server.feature(T.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: DpServer, params: T.DocumentFormattingParams):
        from ..fmt import format_source

        doc = ls.workspace.get_text_document(params.text_document.uri)
        if A.too_large(doc.source) or A.not_text(doc.source):
            return None
        out, _ = format_source(doc.source)
        if out is None or out == doc.source:
            return [] if out is not None else None
        return [T.TextEdit(_whole(ls, doc), out)]

    @server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                    T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.QuickFix, T.CodeActionKind.SourceFixAll]))
    def code_action(ls: DpServer, params: T.CodeActionParams):
        uri = params.text_document.uri
        doc = ls.workspace.get_text_document(uri)
        actions = []
        for d in params.context.diagnostics:
            fixes = (d.data or {}).get("fixes", []) if isinstance(d.data, dict) else []
            for f in fixes:
                try:
                    r = ls.range_of(doc, f["line"] - 1, f["column"] - 1, f["end_line"] - 1, f["end_column"] - 1)
                    edit = T.WorkspaceEdit(changes={uri: [T.TextEdit(r, str(f["replacement"]))]})
                    actions.append(T.CodeAction(title=f.get("message") or f"replace with `{f['replacement']}`",
                                                kind=T.CodeActionKind.QuickFix, diagnostics=[d], edit=edit,
                                                is_preferred=f.get("applicability") == MACHINE))
                except (KeyError, TypeError):  # data from another tool
                    continue
        only = params.context.only
        if not only or any(k.startswith(T.CodeActionKind.SourceFixAll) or k == T.CodeActionKind.Source for k in only):
            if not A.too_large(doc.source) and not A.not_text(doc.source):
                from ..fixes import fix_text

                fixed, n = fix_text(doc.source, _path(uri), ls.columns)
                if n:
                    actions.append(T.CodeAction(title=f"Apply {n} autodp fix{'es' * (n != 1)}", kind=T.CodeActionKind.SourceFixAll,
                                                edit=T.WorkspaceEdit(changes={uri: [T.TextEdit(_whole(ls, doc), fixed)]})))
        return actions

    return server


def _whole(ls: DpServer, doc) -> T.Range:
    lines = doc.lines
    if not lines:
        return T.Range(T.Position(0, 0), T.Position(0, 0))
    last = lines[-1]
    if last.endswith(("\n", "\r")):
        return T.Range(T.Position(0, 0), T.Position(len(lines), 0))
    return T.Range(T.Position(0, 0), ls.to_client(doc, len(lines) - 1, len(last)))
