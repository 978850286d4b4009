-- wrk script for bench/http/run.py: every connection carries its own session.
--
-- run.py starts wrk with as many threads as connections (-t C -c C), so each wrk thread owns
-- exactly one connection, and gives thread i the i-th line of the file named by BENCH_HEADERS:
-- a full header line such as "Authorization: Bearer <token>" or "Cookie: sessionid=<key>".
-- Method, body and content type come from BENCH_METHOD / BENCH_BODY. The request is built
-- once per thread (static), so wrk spends no Lua time per request.
-- done() prints one JSON line that run.py parses.

local headers_file = os.getenv("BENCH_HEADERS")
local lines = {}
if headers_file and headers_file ~= "" then
   for line in io.lines(headers_file) do
      if line ~= "" then lines[#lines + 1] = line end
   end
end
local next_index = 1

function setup(thread)
   if #lines > 0 then
      thread:set("session_header", lines[((next_index - 1) % #lines) + 1])
   end
   thread:set("thread_index", next_index)
   next_index = next_index + 1
end

function init(args)
   wrk.method = os.getenv("BENCH_METHOD") or "GET"
   local body = os.getenv("BENCH_BODY")
   if body and body ~= "" then
      wrk.body = body
      wrk.headers["Content-Type"] = "application/json"
   end
   local extra = os.getenv("BENCH_EXTRA_HEADER")
   if extra and extra ~= "" then
      local name, value = extra:match("^([^:]+):%s*(.*)$")
      wrk.headers[name] = value
   end
   if session_header then
      local name, value = session_header:match("^([^:]+):%s*(.*)$")
      wrk.headers[name] = value
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "duration_us": %d, "bytes": %d, "connect_errors": %d, "read_errors": %d,'
      .. ' "write_errors": %d, "status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d,'
      .. ' "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
      e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
