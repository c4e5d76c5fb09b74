/* The names of alcoded's D-Bus API (DESIGN.md, an interface: never change one), in one place for
 * the daemon that publishes them and the CLI that calls them. */
#pragma once

#define BUS_NAME "io.github.alcode.Daemon1"
#define BUS_PATH "/io/github/alcode/Daemon1"
#define BUS_INTERFACE "io.github.alcode.Daemon1"
#define BUS_ERROR_NO_SUCH_ACCOUNT BUS_INTERFACE ".Error.NoSuchAccount"
#define BUS_ERROR_BAD_CONFIG BUS_INTERFACE ".Error.BadConfig"
