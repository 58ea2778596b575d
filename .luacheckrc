-- luacheck settings for the shipped policies and examples: LuaJIT (Lua 5.1) with the host's `lg` module as the only
-- global a policy may read (policies/README.md).
std = "luajit"
read_globals = { "lg" }
max_line_length = 120
