"""Health, metrics and structured logs for load balancers and on-call staff (docs/operations.md "Monitor").

- `health`: the `/healthz` and `/readyz` checks;
- `figures`: the operational figures (a registration hook: apps add theirs in AppConfig.ready()) that
  `/metrics` and the Operations health admin page both show;
- `counts`: cheap counts on big tables (capped counts, planner estimates);
- `tasks`: Celery task outcomes, counted in Redis by the workers and read at scrape time;
- `prometheus`: the `/metrics` exposition and the request latency histogram;
- `middleware`: the monitoring endpoints (answered before host checks, sessions and 2FA), request ids,
  request latency;
- `logging`: one JSON object per log line with the request id and the Celery task id.
"""
