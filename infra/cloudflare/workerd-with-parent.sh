#!/bin/sh
# Starts workerd (EDGEID_WORKERD_BIN) so that it dies with the process that started it — the
# runner's Miniflare — even when that process is killed with SIGKILL. See runner.mjs.
exec setpriv --pdeathsig KILL -- "$EDGEID_WORKERD_BIN" "$@"
