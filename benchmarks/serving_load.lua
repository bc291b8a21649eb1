-- wrk script for serving_compare.py: POST the body in $BENCH_BODY_FILE to every connection and
-- write the totals and the latency histogram to $BENCH_RESULT_FILE, one "key values" line each.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local body_file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.body = body_file:read("*a")
body_file:close()

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_200 = 0
end

-- wrk itself counts only statuses above 399 as errors, so count every status but 200 here.
function response(status, headers, body)
  if status ~= 200 then
    non_200 = non_200 + 1
  end
end

function done(summary, latency, requests)
  local out = assert(io.open(os.getenv("BENCH_RESULT_FILE"), "w"))
  local non_200_total = 0
  for _, thread in ipairs(threads) do
    non_200_total = non_200_total + thread:get("non_200")
  end
  local errors = summary.errors
  out:write(string.format("requests %d\n", summary.requests))
  out:write(string.format("duration_us %d\n", summary.duration))
  out:write(string.format("non_200 %d\n", non_200_total))
  out:write(string.format("socket_errors %d\n", errors.connect + errors.read + errors.write))
  out:write(string.format("timeouts %d\n", errors.timeout))

  -- latency(i) returns the i-th distinct latency in microseconds and its count. Past the last
  -- one it returns 0, so stop there or once every completed request is written.
  local recorded = 0
  local index = 1
  while recorded < summary.requests do
    local value, count = latency(index)
    if value == 0 or count == 0 then
      break
    end
    out:write(string.format("latency_us %d %d\n", value, count))
    recorded = recorded + count
    index = index + 1
  end
  out:close()
end
