#!/usr/bin/python3
"""A notification server for tests, on the session bus of the environment: owns
org.freedesktop.Notifications, appends each Notify call to the file argv[1] as a JSON line
({"id", "app", "summary", "body", "actions", "hints"}), and emits ActionInvoked(id, key) when
told to through its own test interface:

    busctl --user call org.freedesktop.Notifications /org/freedesktop/Notifications \\
        io.github.alcode.Test Invoke us ID KEY

Used by test_children.py on a private bus and by test_session.py inside the container, where
python3-dbus is what a minbase tree can carry (dunst needs an X server to start)."""

import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"


class Server(dbus.service.Object):
    def __init__(self, bus, out):
        super().__init__(bus, PATH)
        self.out = out
        self.next_id = 7  # not 1: clients must not assume where ids start

    @dbus.service.method(IFACE, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        nid = int(replaces) or self.next_id
        if not replaces:
            self.next_id += 1
        rec = {"id": nid, "app": str(app), "summary": str(summary), "body": str(body),
               "actions": [str(a) for a in actions][0::2],
               "hints": {str(k): (int(v) if isinstance(v, (dbus.Byte, dbus.Int32, dbus.UInt32)) else str(v))
                         for k, v in hints.items()}}
        with open(self.out, "a") as f:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        return nid

    @dbus.service.method(IFACE, out_signature="as")
    def GetCapabilities(self):
        return ["actions", "body"]

    @dbus.service.method(IFACE, out_signature="ssss")
    def GetServerInformation(self):
        return ("alcode-test", "alcode", "1", "1.2")

    @dbus.service.method(IFACE, in_signature="u")
    def CloseNotification(self, nid):
        self.NotificationClosed(nid, 3)

    @dbus.service.signal(IFACE, signature="us")
    def ActionInvoked(self, nid, key):
        pass

    @dbus.service.signal(IFACE, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.method("io.github.alcode.Test", in_signature="us")
    def Invoke(self, nid, key):
        self.ActionInvoked(nid, key)


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    server = Server(bus, sys.argv[1])
    name = dbus.service.BusName(IFACE, bus, do_not_queue=True)
    GLib.MainLoop().run()
    del server, name


if __name__ == "__main__":
    main()
