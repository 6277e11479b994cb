-- wrk script for customer_api_bench.py: GET a random path from a file, print exact figures as JSON.
--
--   wrk -t1 -c32 -d10s --latency -s bench/random_paths.lua http://127.0.0.1:PORT -- PATHS_FILE BEARER_KEY
--
-- PATHS_FILE holds one request path a line (e.g. /v1/customers/<uuid>, or just / for the bare app).
-- Requests are built once per thread in init(), so request() costs a table lookup and a random number.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("thread_no", counter)
end

local requests = {}

function init(args)
  local paths_file, key = args[1], args[2]
  local headers = { ["Accept"] = "application/json" }
  if key and key ~= "" then
    headers["Authorization"] = "Bearer " .. key
  end
  for path in io.lines(paths_file) do
    if path ~= "" then
      requests[#requests + 1] = wrk.format("GET", path, headers)
    end
  end
  if #requests == 0 then
    error("no paths in " .. paths_file)
  end
  math.randomseed(os.time() * 1000 + (thread_no or 0))
end

function request()
  return requests[math.random(#requests)]
end

function done(summary, latency, _requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,'
      .. '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"latency_mean_us":%.1f,"latency_max_us":%d,'
      .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9)
  ))
end
