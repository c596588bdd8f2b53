/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ipc/log.h"

/* The buffer for one line; a longer message is cut short. */
#define IPC_LOG_LINE_MAX 1024

static const char *ipc_log_name = "bulkhead";
static int ipc_log_level = IPC_LOG_INFO;

void ipc_log_init(const char *name, int level)
{
	ipc_log_name = name;
	ipc_log_level = level;
}

bool ipc_log_enabled(int level)
{
	return level <= ipc_log_level;
}

void ipc_log(int level, const char *func, const char *fmt, ...)
{
	char line[IPC_LOG_LINE_MAX];
	va_list ap;
	int n;

	if (level > ipc_log_level)
		return;
	if (level >= IPC_LOG_DEBUG)
		n = snprintf(line, sizeof(line), "%s: %s: ", ipc_log_name, func);
	else
		n = snprintf(line, sizeof(line), "%s: ", ipc_log_name);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write per line so lines from several processes do not mix. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
