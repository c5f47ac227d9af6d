-- POST one Open311 service request: a random category of CITYHUB_BENCH_CODES at a random point of the bench
-- city, with the partner app's key CITYHUB_BENCH_API_KEY (both set by bench/voice_intake.py).
local key = os.getenv("CITYHUB_BENCH_API_KEY")
local codes = {}
for code in string.gmatch(os.getenv("CITYHUB_BENCH_CODES") or "01.01", "[^,]+") do codes[#codes + 1] = code end
local counter = 0

request = function()
  counter = counter + 1
  local lon = 120.10 + math.random() * 0.10
  local lat = 30.20 + math.random() * 0.08
  local body = string.format(
    "api_key=%s&service_code=%s&long=%.6f&lat=%.6f&description=%s%d",
    key, codes[math.random(1, #codes)], lon, lat, "bench+report+number+", counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
