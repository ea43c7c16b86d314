/* A QMP server with the test commands, for tests/lib/qmp.py's test: prints
 * its socket path on stdout and serves until stdin reaches EOF. */
#include "config.h"

#include "qmp-test-util.h"

#include <stdio.h>
#include <unistd.h>

int main(void)
{
    QmpTestServer *t = qts_new();
    char buf[64];

    printf("%s\n", t->path);
    fflush(stdout);
    qts_run(t);
    while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
    }
    qts_free(t);
    return 0;
}
