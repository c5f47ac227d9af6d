-- POST a claim on batch CITYHUB_BENCH_BATCH as a random resident: one bearer token per line of the file
-- CITYHUB_BENCH_TOKENS (both set by bench/market_claims.py); each resident is also its own device.
local batch = os.getenv("CITYHUB_BENCH_BATCH")
local tokens = {}
for line in io.lines(os.getenv("CITYHUB_BENCH_TOKENS")) do tokens[#tokens + 1] = line end

request = function()
  local who = math.random(1, #tokens)
  local headers = {["Authorization"] = "Bearer " .. tokens[who], ["X-Device-Id"] = "phone-" .. who}
  return wrk.format("POST", "/api/v1/market/batches/" .. batch .. "/claim", headers, "")
end
