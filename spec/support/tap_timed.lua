-- spec/support/tap_timed.lua: busted's TAP output (what spec/run.sh counts)
-- plus comment lines with wall times: "# time 12.3 s spec/x_spec.lua" after
-- each spec file, and "# time 4.5 s test: NAME" for each test over
-- VEKTERDB_TEST_SLOW_TEST seconds (default 5). TAP readers skip comments.
--   busted -o spec/support/tap_timed.lua ...
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.TAP"(options)
  local slow_test = tonumber(os.getenv("VEKTERDB_TEST_SLOW_TEST") or "") or 5

  local function comment(seconds, what)
    io.write(string.format("# time %.1f s %s\n", seconds or 0, what))
    io.flush()
  end

  busted.subscribe({ "file", "end" }, function(file)
    comment(file.duration, file.name)
    return nil, true
  end)

  busted.subscribe({ "test", "end" }, function(element)
    if element.duration and element.duration >= slow_test then
      comment(element.duration, "test: " .. handler.getFullName(element))
    end
    return nil, true
  end)

  return handler
end
