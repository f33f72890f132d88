"""The model-backend layer every package shares: a small leaf that imports none of autodp's other
packages, so that ``autodp_dsl``, ``stdlib_ops``, ``autodp_eval`` (which does not import the
language) and ``autodp_search`` can all use it.

- ``errors``: the exception tree of model calls and ``FailureKind``, the failure kinds users see
  counted (``timeout``, ``connection``, ``rate_limit``, ``server``, ``client``, ``malformed``,
  ``internal``; docs/model_ops.md).
- ``openai_client``: the one client of OpenAI-compatible servers and what its errors mean.
- ``retry``: the one retry policy (exponential backoff with jitter, Retry-After honoured).
- ``stats``: the counters of a backend's work (``BackendStats``).
- ``memo``: the persistent per-row memo of model calls.
- ``atomic``: the one atomic write of a file or a folder.
- ``testing``: the one fake OpenAI-compatible server for tests.

Two plain pieces live here for the same reason, that the evaluator must share them without
importing the language:

- ``exitcodes``: the exit codes of every ``autodp`` subcommand (docs/cli.md).
- ``records``: ``fields_dict``, the plain part of a record's stable JSON (reports, budgets, samplings).

The exception tree (``errors``)::

    BackendError                    every error a model call raises
    ├── ConfigError                 spec, key, model or package wrong or missing: stops the run
    ├── UnsupportedError            the backend cannot do this
    └── RequestError                one request failed; ``kind`` says how
        ├── TransientError          retried with backoff
        └── PermanentError          not retried
    MalformedOutput (ValueError)    a validator rejected the model's text
    RefusedWrite (ValueError)       ``atomic``: a write that would destroy something else

Importing the package imports none of its modules (and never ``openai``): import the one you need.
"""
