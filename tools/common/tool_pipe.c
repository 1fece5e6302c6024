/*
 * A reader that goes away is a normal end of output: `hcat x.db | head -1` and
 * `hgen --jsonl | head` stop quietly and exit 0, as cat and yes do (they die of SIGPIPE; the
 * tools ignore SIGPIPE so they can commit and report, and detect the closed pipe instead).
 */
#include "tool.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

bool tool_output_closed(FILE *f)
{
    struct pollfd pfd;
    struct stat sb;
    int fd = f ? fileno(f) : -1;

    if (fd < 0 || fstat(fd, &sb) != 0 || !(S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)))
        return false;
    /* Linux reports POLLERR on a pipe's writing end once no reader is left (POLLHUP for a
     * socket whose peer shut down), whatever the caller asked for. */
    pfd.fd = fd;
    pfd.events = 0;
    pfd.revents = 0;
    return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLERR | POLLHUP)) != 0;
}

void tool_output_discard(FILE *f)
{
    int null_fd, fd = f ? fileno(f) : -1;

    if (fd < 0)
        return;
    null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, fd);
        close(null_fd);
    }
    clearerr(f);
}
