-- wrk script of `bench.compare`: POSTs one JSON-RPC request, `tasks/get` of a given task or a
-- blocking `message/send` with a fresh messageId each time, and at the end prints one JSON line:
--   wrk -t1 -c C -d Ss --latency -s bench/jsonrpc.lua URL -- tasks-get TASK_ID
--   wrk -t1 -c C -d Ss --latency -s bench/jsonrpc.lua URL -- message-send
-- Latencies are wrk's, in microseconds. "errors" counts socket errors, timeouts, non-2xx answers
-- and 2xx answers whose body holds a JSON-RPC error.

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  kind = args[1]
  if kind == "tasks-get" then
    wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tasks/get","params":{"id":"' .. args[2] .. '"}}'
  end
  -- wrk's threads share no state: a prefix per thread and run keeps messageIds unique.
  prefix = string.format("wrk-%d-%d-%d", os.time(), math.random(1, 1e9), id)
  sent = 0
  rpc_errors = 0
end

function request()
  if kind ~= "message-send" then
    return wrk.request()
  end
  sent = sent + 1
  local body = '{"jsonrpc":"2.0","id":' .. sent .. ',"method":"message/send","params":{"message":'
    .. '{"role":"user","parts":[{"kind":"text","text":"hello ' .. sent .. '"}],'
    .. '"messageId":"' .. prefix .. '-' .. sent .. '","kind":"message"}}}'
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 and string.find(body, '"error"', 1, true) then
    rpc_errors = rpc_errors + 1
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  local rpc = 0
  for _, thread in ipairs(threads) do
    rpc = rpc + thread:get("rpc_errors")
  end
  local socket = errors.connect + errors.read + errors.write + errors.timeout
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"socket_errors":%d,"non_2xx":%d,"rpc_errors":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, socket, errors.status, rpc,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
