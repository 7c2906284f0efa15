-- mod_jinglepush_nobounce — load it on jinglepush's Component (Prosody 0.12
-- and 13); see README.md.
--
-- While jinglepush is not connected (a restart, an outage), Prosody's
-- mod_component answers every stanza for it with an error, written back on
-- the connection the stanza came in on. For the copies jinglepush.pfw makes
-- (FORWARD) that is the connection of the call message being copied: a local
-- user's client gets a stray error, and when the caller is on another server
-- the error goes down the s2s stream, claiming to come from the component's
-- domain on a stream authenticated for the users' domain. The other server
-- then closes the whole stream ("not-authorized"), every time. This module
-- drops those copies instead, and leaves every other stanza to mod_component.

local component = module:depends("component");

local function drop_copy(event)
	local stanza = event.stanza;
	if component.connected or stanza.name ~= "message" then
		return nil;
	end
	-- A firewall copy: from a VirtualHost of this server, holding the copy.
	local from = prosody.hosts[stanza.attr.from];
	if from and from.type == "local" and stanza:get_child("forwarded", "urn:xmpp:forward:0") then
		module:log("debug", "jinglepush is not connected: dropping a copy for %s", stanza.attr.to);
		return true;
	end
	return nil;
end

-- Before mod_component (priority -1) bounces them.
module:hook("message/host", drop_copy, 10);
module:hook("message/bare", drop_copy, 10);
