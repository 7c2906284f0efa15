-- jinglepush — the Prosody side (Prosody 0.12 with prosody-modules, or 13).
--
-- 1. Copy this file and jinglepush.pfw next to prosody.cfg.lua, and
--    mod_jinglepush_nobounce.lua into a folder of plugin_paths (Debian's
--    prosody.cfg.lua names /usr/local/lib/prosody/modules).
-- 2. Replace example.com (your users' domain), push.example.com (the
--    component, xmpp.domain in config.toml) and the secret (xmpp.secret).
-- 3. At the end of prosody.cfg.lua add:   Include "jinglepush.cfg.lua"
--
-- Only the table forms of VirtualHost and Component are used below, so the
-- global scope is restored after each block and this file can be included
-- anywhere. If your VirtualHost already sets its own modules_enabled, merge
-- the list below into it instead: a second assignment replaces the first.

VirtualHost "example.com" {
	modules_enabled = {
		"smacks";        -- XEP-0198: keeps a suspended phone's session (core module)
		"carbons";       -- XEP-0280 (core module)
		"mam";           -- XEP-0313 (core module)
		"cloud_notify";  -- XEP-0357 publishes to jinglepush (prosody-modules on 0.12, core on 13)
		"privilege";     -- XEP-0356: every user's presence for jinglepush (prosody-modules)
		"firewall";      -- copies of Jingle call messages for jinglepush (prosody-modules)
	};

	-- XEP-0356: jinglepush sees every available/unavailable presence of local
	-- users, and a snapshot each time it connects.
	privileged_entities = {
		["push.example.com"] = { roster = "get"; presence = "managed_entity"; };
	};

	-- Copies of call messages (jinglepush.pfw). The two extra chains fire when
	-- a propose is stored offline or queued for a hibernated session.
	firewall_scripts = { "jinglepush.pfw" };
	firewall_extra_chains = {
		offline    = { type = "event"; priority = 10; "message/offline/handle" };
		hibernated = { type = "event"; priority = 10; "smacks-hibernation-stanza-queued" };
	};
}

Component "push.example.com" {
	component_secret = "change-me";  -- the same as xmpp.secret in jinglepush's config.toml
	modules_enabled = {
		"privilege";            -- mod_privilege must run on the component too
		"jinglepush_nobounce";  -- mod_jinglepush_nobounce.lua from this folder, in a plugin_paths
		                        -- folder (Debian: /usr/local/lib/prosody/modules): while jinglepush
		                        -- is down, drops the firewall's copies instead of bouncing errors
		                        -- to the callers (which breaks s2s streams to other servers)
	};
}
