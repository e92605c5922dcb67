// SPDX-License-Identifier: GPL-2.0-only
/*
 * cuda_counter — a CUDA workload for tests/gpu/run.sh (real GPU, real
 * driver), with the protocol of tests/workloads/workload.h:
 *
 *   CKPT_TEST_READY=path   our pid is written there once the GPU state is set
 *                          up and the kernels run;
 *   CKPT_TEST_RESULT=path  after SIGUSR1: "PASS" or "FAIL: reasons" (tmp +
 *                          rename), exit 0/1.  Unset: stdout.
 *
 *   cuda_counter [--mib N] [--threads T] [--fork] [--probe]
 *
 * Device memory: N MiB (default 256) filled with a pattern by a kernel.
 * T host threads (default 1) share the process's context, each with its own
 * stream and its own device counter: each loops launching a kernel that
 * increments its counter (and, every 64 launches, a kernel that checks the
 * whole pattern on the device), counting its launches on the host.
 * --fork: a child process is forked before any CUDA call and does the same
 * with its own context (two CUDA processes in one tree); the parent passes
 * SIGUSR1 on and folds the child's result into its own.
 * --probe: initialise, run one kernel, exit 0 (is there a usable GPU, does
 * this binary have code for it).
 *
 * On SIGUSR1 the threads stop and the process checks: every counter on the
 * device equals the launches counted on the host and advanced since ready;
 * the pattern read back to the host is intact; the checker kernel finds no
 * bad word; new kernels still launch and count; a new allocation works.
 */
#include <cuda_runtime.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 8

static volatile sig_atomic_t got_usr1;
static volatile int stop_workers;
static char reasons[2048];
static int nfail;
static const char *who = "cuda_counter";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	size_t len = strlen(reasons);

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: FAIL: %s\n", who, msg);
	if (nfail++ < 6 && len < sizeof(reasons) - 2)
		snprintf(reasons + len, sizeof(reasons) - len, "%s%s", len ? "; " : "", msg);
}

#define CK(call)                                                                              \
	do {                                                                                  \
		cudaError_t e_ = (call);                                                      \
		if (e_ != cudaSuccess)                                                        \
			fail("%s:%d %s: %s (%s)", __FILE__, __LINE__, #call, cudaGetErrorString(e_), \
			     cudaGetErrorName(e_));                                           \
	} while (0)

static int write_file(const char *path, const char *text)
{
	char tmp[4200];
	int fd;
	size_t n = strlen(text);

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

__host__ __device__ static inline uint64_t pattern(uint64_t i)
{
	uint64_t x = i * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return x;
}

__global__ void fill_kernel(uint64_t *buf, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		buf[i] = pattern(i);
}

__global__ void check_kernel(const uint64_t *buf, size_t n, unsigned long long *bad)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x)
		if (buf[i] != pattern(i))
			atomicAdd(bad, 1ULL);
}

__global__ void bump_kernel(unsigned long long *ctr)
{
	if (blockIdx.x == 0 && threadIdx.x == 0)
		*ctr += 1;
}

struct worker {
	pthread_t th;
	int idx;
	cudaStream_t stream;
	unsigned long long *d_ctr; /* device counter */
	unsigned long long *d_bad; /* device bad-word count */
	volatile unsigned long long launches;
	unsigned long long checks;
	char err[256];
};

static uint64_t *d_buf;
static size_t nwords;

static void *worker_main(void *arg)
{
	struct worker *w = (struct worker *)arg;

	while (!stop_workers) {
		cudaError_t e;

		bump_kernel<<<1, 32, 0, w->stream>>>(w->d_ctr);
		e = cudaGetLastError();
		if (e == cudaSuccess && (w->launches + 1) % 64 == 0) {
			check_kernel<<<256, 256, 0, w->stream>>>(d_buf, nwords, w->d_bad);
			e = cudaGetLastError();
			w->checks++;
		}
		if (e == cudaSuccess)
			e = cudaStreamSynchronize(w->stream);
		if (e != cudaSuccess) {
			snprintf(w->err, sizeof(w->err), "thread %d: launch %llu: %s", w->idx,
				 w->launches, cudaGetErrorString(e));
			break;
		}
		w->launches++;
	}
	return NULL;
}

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static pid_t child = -1;

static int run(size_t mib, int nthreads, const char *ready_path)
{
	struct worker w[MAX_THREADS];
	unsigned long long at_ready[MAX_THREADS];
	sigset_t block, old;
	int dev = 0;
	cudaDeviceProp prop;

	memset(w, 0, sizeof(w));
	CK(cudaSetDevice(0));
	CK(cudaFree(0)); /* create the context before the threads */
	if (nfail)
		return 1;
	CK(cudaGetDevice(&dev));
	CK(cudaGetDeviceProperties(&prop, dev));
	printf("%s: pid %d on %s (sm_%d%d), %zu MiB, %d thread(s)\n", who, (int)getpid(), prop.name,
	       prop.major, prop.minor, mib, nthreads);

	nwords = mib * 1024 * 1024 / sizeof(uint64_t);
	CK(cudaMalloc((void **)&d_buf, nwords * sizeof(uint64_t)));
	if (nfail)
		return 1;
	fill_kernel<<<1024, 256>>>(d_buf, nwords);
	CK(cudaGetLastError());
	CK(cudaDeviceSynchronize());

	/* SIGUSR1 only for the main thread */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (int t = 0; t < nthreads; t++) {
		w[t].idx = t;
		CK(cudaStreamCreateWithFlags(&w[t].stream, cudaStreamNonBlocking));
		CK(cudaMalloc((void **)&w[t].d_ctr, sizeof(unsigned long long)));
		CK(cudaMalloc((void **)&w[t].d_bad, sizeof(unsigned long long)));
		CK(cudaMemset(w[t].d_ctr, 0, sizeof(unsigned long long)));
		CK(cudaMemset(w[t].d_bad, 0, sizeof(unsigned long long)));
		if (nfail)
			return 1;
		if (pthread_create(&w[t].th, NULL, worker_main, &w[t])) {
			fail("pthread_create failed");
			return 1;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	/* ready once every thread has launched some kernels */
	for (int tries = 0; tries < 3000; tries++) {
		bool all = true;

		for (int t = 0; t < nthreads; t++)
			all = all && w[t].launches >= 100;
		if (all)
			break;
		usleep(1000);
	}
	for (int t = 0; t < nthreads; t++)
		at_ready[t] = w[t].launches;
	if (ready_path) {
		char buf[32];

		snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		if (write_file(ready_path, buf))
			fprintf(stderr, "%s: cannot write %s: %s\n", who, ready_path, strerror(errno));
	}

	while (!got_usr1)
		pause();
	printf("%s: SIGUSR1, checking\n", who);
	if (child > 0)
		kill(child, SIGUSR1);

	stop_workers = 1;
	for (int t = 0; t < nthreads; t++)
		pthread_join(w[t].th, NULL);
	CK(cudaDeviceSynchronize());

	for (int t = 0; t < nthreads; t++) {
		unsigned long long ctr = 0, bad = 0;

		if (w[t].err[0])
			fail("%s", w[t].err);
		CK(cudaMemcpy(&ctr, w[t].d_ctr, sizeof(ctr), cudaMemcpyDeviceToHost));
		CK(cudaMemcpy(&bad, w[t].d_bad, sizeof(bad), cudaMemcpyDeviceToHost));
		if (ctr != w[t].launches)
			fail("thread %d: device counter %llu, host launched %llu", t, ctr, w[t].launches);
		if (w[t].launches <= at_ready[t])
			fail("thread %d: counter did not advance since ready (%llu)", t, w[t].launches);
		if (bad)
			fail("thread %d: the device checker found %llu bad words in %llu checks", t, bad,
			     w[t].checks);
		printf("%s: thread %d: %llu launches (%llu at ready), %llu pattern checks\n", who, t,
		       w[t].launches, at_ready[t], w[t].checks);
	}

	/* the whole pattern, read back */
	{
		const size_t chunk = 8u << 20; /* words */
		uint64_t *h = (uint64_t *)malloc(chunk * sizeof(uint64_t));
		size_t bad = 0, first = (size_t)-1;

		if (!h) {
			fail("out of host memory");
		} else {
			for (size_t off = 0; off < nwords && !nfail; off += chunk) {
				size_t n = nwords - off < chunk ? nwords - off : chunk;

				CK(cudaMemcpy(h, d_buf + off, n * sizeof(uint64_t), cudaMemcpyDeviceToHost));
				for (size_t i = 0; i < n; i++) {
					if (h[i] != pattern(off + i)) {
						if (first == (size_t)-1)
							first = off + i;
						bad++;
					}
				}
			}
			free(h);
		}
		if (bad)
			fail("%zu of %zu words of device memory differ (first at word %zu)", bad, nwords,
			     first);
	}

	/* kernels still launch and count; allocations still work */
	for (int t = 0; t < nthreads; t++) {
		unsigned long long ctr = 0;

		bump_kernel<<<1, 32, 0, w[t].stream>>>(w[t].d_ctr);
		CK(cudaGetLastError());
		CK(cudaStreamSynchronize(w[t].stream));
		CK(cudaMemcpy(&ctr, w[t].d_ctr, sizeof(ctr), cudaMemcpyDeviceToHost));
		if (ctr != w[t].launches + 1)
			fail("thread %d: a kernel after the checks gave %llu, want %llu", t, ctr,
			     w[t].launches + 1);
	}
	{
		unsigned long long *d = NULL, v = 1;

		CK(cudaMalloc((void **)&d, 64 << 20));
		CK(cudaMemset(d, 0, 64 << 20));
		CK(cudaMemcpy(&v, d + 12345, sizeof(v), cudaMemcpyDeviceToHost));
		if (v)
			fail("a new allocation is not zeroed by cudaMemset (%llu)", v);
		CK(cudaFree(d));
	}
	return nfail ? 1 : 0;
}

static int probe(void)
{
	unsigned long long *d = NULL, v = 0;

	CK(cudaSetDevice(0));
	if (!nfail)
		CK(cudaMalloc((void **)&d, sizeof(v)));
	if (!nfail)
		CK(cudaMemset(d, 0, sizeof(v)));
	if (!nfail) {
		bump_kernel<<<1, 32>>>(d);
		CK(cudaGetLastError());
	}
	if (!nfail)
		CK(cudaMemcpy(&v, d, sizeof(v), cudaMemcpyDeviceToHost));
	if (!nfail && v != 1)
		fail("probe kernel gave %llu, want 1", v);
	if (nfail) {
		printf("probe: %s\n", reasons);
		return 1;
	}
	printf("probe: ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *ready = getenv("CKPT_TEST_READY"), *result = getenv("CKPT_TEST_RESULT");
	size_t mib = 256;
	int nthreads = 1, do_fork = 0, ret;
	char child_ready[4200] = "", child_result[4200] = "";
	struct sigaction sa;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mib") && i + 1 < argc)
			mib = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthreads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--fork"))
			do_fork = 1;
		else if (!strcmp(argv[i], "--probe"))
			return probe();
		else {
			fprintf(stderr, "usage: cuda_counter [--mib N] [--threads T] [--fork] [--probe]\n");
			return 2;
		}
	}
	if (nthreads < 1 || nthreads > MAX_THREADS || mib < 1) {
		fprintf(stderr, "cuda_counter: --threads 1..%d, --mib >= 1\n", MAX_THREADS);
		return 2;
	}
	setsid();
	for (int fd = 3; fd < 1024; fd++)
		close(fd);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);

	if (do_fork) {
		/* before any CUDA call: the child gets its own context */
		if (ready)
			snprintf(child_ready, sizeof(child_ready), "%s.child", ready);
		if (result)
			snprintf(child_result, sizeof(child_result), "%s.child", result);
		child = fork();
		if (child < 0) {
			perror("fork");
			return 2;
		}
		if (child == 0) {
			who = "cuda_counter(child)";
			child = -1;
			ret = run(mib, nthreads, child_ready[0] ? child_ready : NULL);
			if (child_result[0])
				write_file(child_result, ret ? "FAIL" : "PASS");
			_exit(ret);
		}
		who = "cuda_counter(parent)";
		/* the parent is ready once the child is */
		if (child_ready[0]) {
			struct stat st;
			int tries = 0;

			while (stat(child_ready, &st) && ++tries < 1200)
				usleep(50000);
			if (tries >= 1200)
				fail("the child did not get ready in 60 s");
		}
	}

	ret = nfail ? 1 : run(mib, nthreads, ready);
	if (child > 0) {
		int status = 0;

		if (waitpid(child, &status, 0) != child)
			fail("waitpid(child %d): %s", (int)child, strerror(errno));
		else if (!WIFEXITED(status) || WEXITSTATUS(status))
			fail("the child (pid %d) failed (status %#x; its reasons are in the output)",
			     (int)child, status);
		ret = nfail ? 1 : 0;
	}
	{
		char text[2200];

		if (nfail)
			snprintf(text, sizeof(text), "FAIL: %s\n", reasons);
		else
			snprintf(text, sizeof(text), "PASS\n");
		if (result)
			write_file(result, text);
		fputs(text, stdout);
	}
	return ret;
}
