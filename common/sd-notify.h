/* systemd's service notification protocol (sd_notify(3)), without
 * libsystemd: one datagram with "KEY=VALUE" lines to the unix socket
 * named by $NOTIFY_SOCKET (a leading '@' is the abstract namespace).
 * Outside systemd (no NOTIFY_SOCKET) every call is a no-op. */
#ifndef COLO_COMMON_SD_NOTIFY_H
#define COLO_COMMON_SD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Sends @state ("READY=1", "WATCHDOG=1", "STATUS=...", "STOPPING=1");
 * false if there is no NOTIFY_SOCKET or the send failed (logged at debug
 * level: a manager that went away must not stop the service). */
bool colo_sd_notify(const char *state);

/* The watchdog interval systemd expects WATCHDOG=1 within (WatchdogSec=,
 * from $WATCHDOG_USEC), or 0 if there is none or it is meant for another
 * process ($WATCHDOG_PID). */
uint64_t colo_sd_watchdog_usec(void);

#endif
