/*
 * Signals: the handler only sets a flag; loops notice it, commit, report and exit 0.
 */
#include "tool.h"

#include <string.h>

volatile sig_atomic_t tool_stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    tool_stop_requested = 1;
}

void tool_signals_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
