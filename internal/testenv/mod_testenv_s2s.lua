-- mod_testenv_s2s: part of jinglepush's internal/testenv, for tests only.
--
-- Points Prosody's outgoing server-to-server connections at the other servers
-- of one test: the domain -> loopback address and port map is the file named
-- by testenv_s2s_peers (lines "domain address port"), read for every new
-- connection, so servers that start later are found too. Every other domain
-- fails at once: a test never asks DNS and never leaves the machine.
--
-- mod_s2s looks a remote domain up through net.resolvers.service (SRV, then
-- A/AAAA); this module replaces that table's constructor, which mod_s2s calls
-- anew for each connection. Prosody 0.12 and 13 (where the same table is also
-- "prosody.net.resolvers.service").
module:set_global();

local ok, service = pcall(require, "prosody.net.resolvers.service");
if not ok then
	service = require "net.resolvers.service";
end

local peers_file = module:get_option_string("testenv_s2s_peers");
local original_new = service.new;

local function lookup(domain)
	local f = peers_file and io.open(peers_file);
	if not f then
		return nil;
	end
	for line in f:lines() do
		local name, address, port = line:match("^(%S+) (%S+) (%d+)$");
		if name == domain then
			f:close();
			return address, tonumber(port);
		end
	end
	f:close();
	return nil;
end

-- The resolver interface net.connect uses: next(cb) hands over one target
-- (conn_type, ip, port, extra) per call, and nothing once they are used up.
local function fixed(hostname, targets, last_error)
	return {
		hostname = hostname;
		last_error = last_error;
		next = function(_, cb)
			local target = table.remove(targets, 1);
			if target then
				cb(target[1], target[2], target[3], target[4]);
			else
				cb(nil);
			end
		end;
	};
end

function service.new(hostname, srv, conn_type, extra)
	if srv ~= "xmpp-server" and srv ~= "xmpps-server" then
		return original_new(hostname, srv, conn_type, extra);
	end
	local address, port = lookup(hostname);
	if srv == "xmpps-server" or not address then
		module:log("debug", "testenv: no %s peer for %s", srv, hostname);
		return fixed(hostname, {}, "not a server of this test");
	end
	module:log("debug", "testenv: s2s to %s goes to %s port %d", hostname, address, port);
	return fixed(hostname, { { (conn_type or "tcp") .. (address:find(":", 1, true) and "6" or "4"), address, port, extra } });
end

function module.unload()
	service.new = original_new;
end
