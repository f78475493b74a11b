/* The x86-64 machine: RAM, buses, devices, vCPUs, and one engine. */
#ifndef KUMO_MACHINE_H
#define KUMO_MACHINE_H

#include <pthread.h>
#include <stdatomic.h>

#include "kumo/accel.h"
#include "kumo/boot.h"
#include "kumo/bus.h"
#include "kumo/evloop.h"
#include "kumo/memory.h"

#define MACHINE_MAX_VCPUS 64 /* xAPIC ids, MADT entries: well inside 8 bits */

/* Exit statuses of kumo-vmm (docs/machine.md). */
enum {
	EXIT_POWEROFF = 0,
	EXIT_FAILURE_KUMO = 1,
	EXIT_USAGE = 2,
	EXIT_RESET = 3,
	EXIT_TEST_BASE = 64,
	EXIT_USER_QUIT = 130,
};

struct serial;
struct console;
struct pci_host;

#define MACHINE_MAX_DISKS 16
#define MACHINE_MAX_NICS  8

/* --disk PATH[,ro][,id=NAME][,format=FMT] */
struct machine_disk {
	const char *path;
	bool read_only;
	const char *id;       /* the serial the guest reads (GET_ID), may be NULL */
	const char *format;   /* "raw", "qcow2"...; NULL: probed from the header */
};

/* --net tap=NAME[,mac=MAC] (or a tap fd handed over by kumod) */
struct machine_nic {
	const char *tap;      /* interface name; created when it does not exist */
	int tap_fd;           /* >= 0: an open tap to use instead of tap */
	uint8_t mac[6];
	bool mac_set;         /* else derived from the NIC's index */
};

struct machine_config {
	uint64_t mem_size;
	unsigned ncpus;
	const char *kernel;
	const char *initrd;   /* may be NULL */
	const char *cmdline;
	const struct accel_ops *accel_ops;
	const char *console_log; /* may be NULL */
	enum boot_unpack kernel_unpack; /* who decompresses a bzImage's kernel */
	struct machine_disk disks[MACHINE_MAX_DISKS];
	unsigned nr_disks;
	struct machine_nic nics[MACHINE_MAX_NICS];
	unsigned nr_nics;
	bool no_rng;          /* no virtio-rng device */
};

struct vcpu {
	struct machine *m;
	unsigned index;
	pthread_t thread;
	bool started;
	int err;          /* vcpu_run's result */
	void *engine;     /* the engine's per-vCPU state */
};

struct machine {
	struct machine_config cfg;
	struct guest_mem mem;
	struct io_bus pio, mmio;
	const struct accel_ops *accel;
	void *engine;     /* the engine's per-VM state */
	unsigned ncpus;
	struct vcpu *vcpus;

	atomic_int exit_claimed;
	atomic_int exiting;  /* set once: the machine is stopping */
	int exit_status;
	int exit_efd;        /* eventfd: wakes the main loop on exit */
	int signal_fd;

	struct machine_owned {
		void (*destroy)(void *);
		void *opaque;
	} *owned;
	unsigned nr_owned, cap_owned;

	struct serial *serial;
	struct console *console;
	/* The machine thread's event loop: devices add their fds (queue
	 * kicks, tap, completions) when they are created. */
	struct evloop loop;
	bool loop_ready;
	struct pci_host *pci;
	uint64_t boot_ns;    /* when machine_create started, for timings */
};

/* Build the machine: memory, engine, devices, firmware tables, kernel. */
int machine_create(struct machine *m, const struct machine_config *cfg,
		   const char **err_msg) WUR;
/* Start the vCPUs, run the console until the guest or the user ends it;
 * returns the exit status. */
int machine_run(struct machine *m);
void machine_destroy(struct machine *m);

/* From any thread (devices, vCPUs): stop the machine with this status.
 * The first request wins. */
void machine_request_exit(struct machine *m, int status);
static inline bool machine_exiting(struct machine *m)
{
	return atomic_load_explicit(&m->exiting, memory_order_acquire);
}
int machine_irq_line(struct machine *m, unsigned gsi, int level) WUR;

/* Hand an object to the machine: destroy(opaque) runs in machine_destroy,
 * last owned first. On failure destroy has already run. */
int machine_own(struct machine *m, void (*destroy)(void *), void *opaque) WUR;

/* The engines' way into the machine's buses. Unclaimed port reads see all
 * ones, unclaimed writes are dropped. */
void machine_pio(struct machine *m, uint16_t port, uint8_t *data, unsigned len, bool is_write);
void machine_mmio(struct machine *m, uint64_t addr, uint8_t *data, unsigned len, bool is_write);

#endif
