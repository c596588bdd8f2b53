/* SPDX-License-Identifier: MIT */
/*
 * Logging for every Bulkhead process: one line to stderr, prefixed with the
 * process name (and the function, for debug lines).
 */
#ifndef BULKHEAD_LOG_H
#define BULKHEAD_LOG_H

#include <stdbool.h>

enum ipc_log_level { IPC_LOG_ERR = 0, IPC_LOG_WARN = 1, IPC_LOG_INFO = 2,
		     IPC_LOG_DEBUG = 3 };

/* Name used as the prefix of every line; verbosity (IPC_LOG_*). */
void ipc_log_init(const char *name, int level);
bool ipc_log_enabled(int level);
void ipc_log(int level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_ERR(...) ipc_log(IPC_LOG_ERR, __func__, __VA_ARGS__)
#define LOG_WARN(...) ipc_log(IPC_LOG_WARN, __func__, __VA_ARGS__)
#define LOG_INFO(...) ipc_log(IPC_LOG_INFO, __func__, __VA_ARGS__)
#define LOG_DBG(...) ipc_log(IPC_LOG_DEBUG, __func__, __VA_ARGS__)

#endif
