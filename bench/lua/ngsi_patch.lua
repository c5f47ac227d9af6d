-- PATCH one attribute of a random entity out of ENTITIES (set by the benchmark through the environment).
local entities = tonumber(os.getenv("CITYHUB_BENCH_ENTITIES") or "1000")
local counter = 0

request = function()
  counter = counter + 1
  local id = math.random(1, entities)
  local body = string.format('{"value": %d.%d}', counter % 40, counter % 10)
  return wrk.format("PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Sensor:" .. id .. "/attrs/temperature", nil, body)
end
