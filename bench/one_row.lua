-- wrk script: every request appends one row, durably (acknowledged after fsync).
local headers = {}
function init(args)
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. args[1]
end
function request()
  return wrk.format("POST", nil, headers,
    '[{"time": 1767225600000, "station": "wrk", "value": 1.5, "quality": 1}]')
end
