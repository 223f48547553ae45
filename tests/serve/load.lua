-- load.lua: wrk's script for `pstrain serve`: POSTs one request body, read from the file
-- named by $SERVE_BODY (with $SERVE_PATH and $SERVE_HEADER "Name: value" when the body needs
-- one), at most $SERVE_REQUESTS requests per thread (a bounded load); counts answers that
-- are not 200 and keeps the model versions seen, in order, for done() to print:
--   requests N non200 K versions V1,V2,...
local path = os.getenv("SERVE_PATH")
local limit = tonumber(os.getenv("SERVE_REQUESTS") or "0")
local f = assert(io.open(os.getenv("SERVE_BODY"), "rb"))
local body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = os.getenv("SERVE_CTYPE") or "application/json"
local header = os.getenv("SERVE_HEADER")
if header then
    local k, v = header:match("^([^:]+):%s*(.*)$")
    wrk.headers[k] = v
end

-- $SERVE_DELAY_MS: a pause before each request, to spread a bounded load over time.
local pause = tonumber(os.getenv("SERVE_DELAY_MS") or "0")
if pause > 0 then
    function delay()
        return pause
    end
end

local threads = {}
function setup(thread)
    table.insert(threads, thread)
end

-- Globals, so that done() can read them from each thread (thread:get).
sent, answered, non200, versions, last = 0, 0, 0, "", nil
function request()
    sent = sent + 1
    return wrk.format(nil, path)
end

function response(status, headers, body)
    answered = answered + 1
    if status ~= 200 then
        non200 = non200 + 1
    else
        local v = body:match('"model_version"%s*:%s*"(%d+)"')
        if v and v ~= last then
            last = v
            versions = versions .. (versions == "" and "" or ",") .. v
        end
    end
    if limit > 0 and answered >= limit then
        wrk.thread:stop()
    end
end

function done(summary, latency, requests)
    local n, bad, vs = 0, 0, {}
    for _, t in ipairs(threads) do
        n = n + (t:get("answered") or 0)
        bad = bad + (t:get("non200") or 0)
        table.insert(vs, t:get("versions") or "")
    end
    io.write(string.format("requests %d non200 %d errors %d versions %s\n", n, bad,
        summary.errors.connect + summary.errors.read + summary.errors.write +
        summary.errors.status + summary.errors.timeout, table.concat(vs, ";")))
    io.write(string.format("latency_us p50 %d p90 %d p99 %d max %d\n", latency:percentile(50),
        latency:percentile(90), latency:percentile(99), latency.max))
    io.write(string.format("throughput %.1f req/s over %.3f s\n",
        summary.requests / (summary.duration / 1e6), summary.duration / 1e6))
end
