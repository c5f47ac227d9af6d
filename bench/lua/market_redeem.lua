-- POST one redemption per request: the next unused code of the file CITYHUB_BENCH_CODES (one per line), at
-- store CITYHUB_BENCH_STORE of merchant CITYHUB_BENCH_MERCHANT, with the till key CITYHUB_BENCH_KEY. Each wrk
-- thread takes every n-th code (n = threads) so no code is sent twice.
local codes = {}
for line in io.lines(os.getenv("CITYHUB_BENCH_CODES")) do codes[#codes + 1] = line end
local path = "/api/v1/market/merchants/" .. os.getenv("CITYHUB_BENCH_MERCHANT") .. "/redemptions"
local store = os.getenv("CITYHUB_BENCH_STORE")
local key = os.getenv("CITYHUB_BENCH_KEY")
local next_code = 0

request = function()
  next_code = next_code + 1
  local code = codes[next_code] or codes[1]
  local body = string.format(
    '{"codes": ["%s"], "store_id": %s, "amount_cents": 5000, "client_key": "bench-%s"}', code, store, code)
  return wrk.format("POST", path, {["Content-Type"] = "application/json", ["X-API-Key"] = key}, body)
end
