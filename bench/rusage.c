/* Runs a program and prints "<peak RSS KiB> <user+sys CPU ms>" of that child alone.
 * ru_maxrss survives execve, so the launcher must be tiny and static: a Python or shell
 * parent would add its own resident set to the figure. Built by scripts/bench. */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
        execv(argv[1], argv + 1);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) return 2;
    double cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    printf("%ld %.3f\n", ru.ru_maxrss, cpu_ms);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
