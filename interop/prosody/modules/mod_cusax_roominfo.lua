-- mod_cusax_roominfo: load on a MUC component (Prosody 0.12).
-- Adds the RFC 7081 section 8 'audio-video-uri' field to every room's
-- muc#roominfo disco#info form (sip:<room node>@<cusax_sip_domain>) and
-- creates the persistent rooms listed in 'cusax_rooms' at start-up.
local jid_split = require "util.jid".split;
local mod_muc = module:depends("muc");
local sip_domain = module:get_option_string("cusax_sip_domain", "cusax.test");
local rooms = module:get_option_array("cusax_rooms", {});

module:hook("muc-disco#info", function(event)
	local node = jid_split(event.room.jid);
	table.insert(event.form, { name = "audio-video-uri", type = "text-single",
		label = "Audio/video conference" });
	event.formdata["audio-video-uri"] = "sip:" .. node .. "@" .. sip_domain;
end);

local function create_rooms()
	for _, room_jid in ipairs(rooms) do
		local room = mod_muc.get_room_from_jid(room_jid) or mod_muc.create_room(room_jid);
		if room then
			room:set_persistent(true);
			room:set_public(true);
			room:save(true);
			module:log("info", "Persistent room %s ready", room_jid);
		else
			module:log("error", "Could not create room %s", room_jid);
		end
	end
end

if prosody.start_time then create_rooms(); else module:hook_global("server-started", create_rooms); end
