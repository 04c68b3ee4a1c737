// The chat page: wires the parts together. Each part has one job (see its file);
// the server is the source of truth, reached only through the client library (/client.js).

import { ui } from "./dom.js";
import { initComposer } from "./composer.js";
import { initJoinScreen } from "./join-screen.js";
import { initLayout } from "./layout.js";
import { initRooms } from "./rooms.js";
import { savedName, savedSession } from "./saved-session.js";
import { signOut, start } from "./session.js";
import { initStatus } from "./status.js";

initJoinScreen((name, room) => void start(name, [room], room));
initRooms();
initComposer();
initStatus();
initLayout();
ui.signOut.addEventListener("click", signOut);

ui.joinName.value = savedName();
// A reload of this tab: its token still names the session, so resume it without asking.
const saved = savedSession();
if (saved) void start(saved.name, saved.rooms, saved.room, saved.token);
else (ui.joinName.value ? ui.joinRoom : ui.joinName).focus();
