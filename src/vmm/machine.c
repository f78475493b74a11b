/* Building and running the machine. The order of construction is one
 * readable table (machine_parts), not hidden in constructors. */
#include "kumo/machine.h"
#include "kumo/acpi.h"
#include "kumo/boot.h"
#include "kumo/console.h"
#include "kumo/devices.h"
#include "kumo/evloop.h"
#include "kumo/log.h"
#include "kumo/pci.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define KERNEL_MAX (256 * MiB)
#define INITRD_MAX (2 * GiB)

int machine_own(struct machine *m, void (*destroy)(void *), void *opaque)
{
	if (m->nr_owned == m->cap_owned) {
		unsigned cap = m->cap_owned ? m->cap_owned * 2 : 16;
		struct machine_owned *n = realloc(m->owned, cap * sizeof(*n));
		if (!n) {
			destroy(opaque);
			return -ENOMEM;
		}
		m->owned = n;
		m->cap_owned = cap;
	}
	m->owned[m->nr_owned++] = (struct machine_owned){ destroy, opaque };
	return 0;
}

void machine_request_exit(struct machine *m, int status)
{
	int expected = 0;
	uint64_t one = 1;

	if (!atomic_compare_exchange_strong(&m->exit_claimed, &expected, 1))
		return;
	m->exit_status = status;
	atomic_store_explicit(&m->exiting, 1, memory_order_release);
	if (m->exit_efd >= 0 && write(m->exit_efd, &one, sizeof(one)) < 0)
		log_debug("exit eventfd write failed");
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->vcpus && m->vcpus[i].engine)
			m->accel->vcpu_kick(&m->vcpus[i]);
}

int machine_irq_line(struct machine *m, unsigned gsi, int level)
{
	return m->accel->irq_line(m, gsi, level);
}

void machine_pio(struct machine *m, uint16_t port, uint8_t *data, unsigned len, bool is_write)
{
	if (!io_bus_access(&m->pio, port, data, len, is_write) && !is_write)
		memset(data, 0xff, len);
}

void machine_mmio(struct machine *m, uint64_t addr, uint8_t *data, unsigned len, bool is_write)
{
	if (!io_bus_access(&m->mmio, addr, data, len, is_write) && !is_write)
		memset(data, 0xff, len);
}

/* ---- construction steps ---- */

static int make_engine(struct machine *m, const char **why)
{
	int err = m->accel->init(m);

	if (err == -ENOENT)
		*why = "no /dev/kvm on this host (is the kvm module loaded?)";
	else if (err == -EACCES || err == -EPERM)
		*why = "no permission to open /dev/kvm (are you in the kvm group?)";
	else if (err == -ENOTTY || err == -EINVAL || err == -ENODEV)
		*why = "the KVM device does not answer like KVM";
	else if (err == -E2BIG)
		*why = "more vCPUs than this host's KVM allows";
	else if (err)
		*why = "cannot create the virtual machine in KVM";
	return err;
}

static int make_vcpus(struct machine *m, const char **why)
{
	m->vcpus = calloc(m->ncpus, sizeof(*m->vcpus));
	if (!m->vcpus)
		return -ENOMEM;
	for (unsigned i = 0; i < m->ncpus; i++) {
		int err;
		m->vcpus[i].m = m;
		m->vcpus[i].index = i;
		if ((err = m->accel->vcpu_init(m, &m->vcpus[i]))) {
			*why = "cannot create a vCPU";
			return err;
		}
	}
	return 0;
}

static int make_console(struct machine *m, const char **why)
{
	struct serial_backend be;
	int err = console_open(&m->console, m, STDIN_FILENO, STDOUT_FILENO, m->cfg.console_log, why);

	if (err)
		return err;
	console_backend(m->console, &be);
	err = serial_create(m, SERIAL_COM1_BASE, SERIAL_COM1_IRQ, &be, &m->serial);
	if (err)
		*why = "cannot create the serial port";
	return err;
}

static int make_devices(struct machine *m, const char **why)
{
	int err;

	if ((err = i8042_create(m)) || (err = acpi_pm_create(m)) || (err = testdev_create(m))) {
		*why = "cannot create the legacy devices";
		return err;
	}
	if ((err = pci_bus_create(m))) {
		*why = "cannot create the PCI bus";
		return err;
	}
	if (!m->cfg.no_rng && (err = virtio_rng_create(m))) {
		*why = "cannot create the virtio-rng device";
		return err;
	}
	for (unsigned i = 0; i < m->cfg.nr_disks; i++)
		if ((err = virtio_blk_create(m, &m->cfg.disks[i], i, why)))
			return err;
	for (unsigned i = 0; i < m->cfg.nr_nics; i++)
		if ((err = virtio_net_create(m, &m->cfg.nics[i], i, why)))
			return err;
	return 0;
}

static int load_kernel(struct machine *m, const char **why)
{
	struct boot_config bc = {
		.cmdline = m->cfg.cmdline ? m->cfg.cmdline : "",
		.unpack = m->cfg.kernel_unpack,
	};
	struct x86_cpu_state cpu;
	uint8_t *kernel = NULL, *initrd = NULL;
	uint8_t *acpi = gpa_ptr(&m->mem, ACPI_TABLES_GPA, ACPI_TABLES_MAX);
	int err, used;

	if (!acpi || (used = acpi_build(acpi, ACPI_TABLES_MAX, ACPI_TABLES_GPA, m->ncpus)) < 0) {
		*why = "cannot build the ACPI tables";
		return -ENOSPC;
	}
	bc.rsdp_gpa = ACPI_TABLES_GPA;
	err = read_file(m->cfg.kernel, KERNEL_MAX, &kernel, &bc.kernel_len);
	if (err) {
		*why = err == -EFBIG ? "kernel image larger than 256 MiB" :
		       err == -EINVAL ? "kernel is not a regular file" : "cannot read the kernel image";
		return err;
	}
	bc.kernel = kernel;
	if (m->cfg.initrd) {
		err = read_file(m->cfg.initrd, INITRD_MAX, &initrd, &bc.initrd_len);
		if (err) {
			*why = err == -EFBIG ? "initrd larger than 2 GiB" :
			       err == -EINVAL ? "initrd is not a regular file" : "cannot read the initrd";
			goto out;
		}
		bc.initrd = initrd;
	}
	if ((err = boot_load(&m->mem, &bc, &cpu, why)))
		goto out;
	if ((err = m->accel->vcpu_set_state(&m->vcpus[0], &cpu)))
		*why = "cannot set the boot vCPU's registers";
out:
	free(kernel);
	free(initrd);
	return err;
}

static int make_memory(struct machine *m, const char **why)
{
	int err = guest_mem_init(&m->mem, m->cfg.mem_size);

	if (err == -EINVAL)
		*why = "memory size must be a multiple of 4 KiB between 8 MiB and 1 TiB";
	else if (err)
		*why = "cannot map that much guest memory on this host";
	return err;
}

static const struct {
	const char *name;
	int (*make)(struct machine *m, const char **why);
} machine_parts[] = {
	{ "memory", make_memory },
	{ "engine", make_engine },
	{ "vcpus", make_vcpus },
	{ "console", make_console },
	{ "devices", make_devices },
	{ "kernel", load_kernel },
};

int machine_create(struct machine *m, const struct machine_config *cfg, const char **err_msg)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->boot_ns = now_ns();
	m->cfg = *cfg;
	m->ncpus = cfg->ncpus;
	m->exit_efd = -1;
	if (!m->ncpus || m->ncpus > MACHINE_MAX_VCPUS) {
		*err_msg = "the number of vCPUs must be between 1 and 64";
		return -EINVAL;
	}
	m->accel = cfg->accel_ops;
	m->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->exit_efd < 0) {
		*err_msg = "cannot create an eventfd";
		return -errno;
	}
	if ((err = evloop_init(&m->loop))) {
		*err_msg = "cannot create the event loop";
		return err;
	}
	m->loop_ready = true;
	for (size_t i = 0; i < ARRAY_SIZE(machine_parts); i++) {
		const char *why = NULL;
		int err = machine_parts[i].make(m, &why);
		if (err) {
			*err_msg = why ? why : machine_parts[i].name;
			log_debug("machine: %s: %s", machine_parts[i].name, strerror(-err));
			return err;
		}
	}
	log_debug("machine: built in %llu us", (unsigned long long)(now_ns() - m->boot_ns) / 1000);
	return 0;
}

/* ---- running ---- */

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;

	v->err = v->m->accel->vcpu_run(v);
	if (v->err)
		machine_request_exit(v->m, EXIT_FAILURE_KUMO);
	return NULL;
}

static void on_exit_event(void *opaque, uint32_t events)
{
	struct machine *m = opaque;
	uint64_t v;

	(void)events;
	if (read(m->exit_efd, &v, sizeof(v)) < 0)
		return;
}

static void on_signal(void *opaque, uint32_t events)
{
	struct machine *m = opaque;
	struct signalfd_siginfo si;
	int fd = m->signal_fd;

	(void)events;
	if (read(fd, &si, sizeof(si)) == sizeof(si))
		machine_request_exit(m, EXIT_USER_QUIT);
}

int machine_run(struct machine *m)
{
	struct evloop *loop = &m->loop;
	sigset_t sigs, old;
	int err;

	/* The machine thread takes SIGINT/SIGTERM/SIGHUP through a signalfd;
	 * every thread, vCPUs included, inherits them blocked. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	sigdelset(&sigs, SIGPIPE);
	m->signal_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);

	if ((err = evloop_add(loop, m->exit_efd, EPOLLIN, on_exit_event, m)) ||
	    (err = evloop_add(loop, m->signal_fd, EPOLLIN, on_signal, m)) ||
	    (err = console_attach(m->console, m->serial, loop))) {
		log_error("cannot set up the event loop: %s", strerror(-err));
		machine_request_exit(m, EXIT_FAILURE_KUMO);
	}
	for (unsigned i = 0; i < m->ncpus && !machine_exiting(m); i++) {
		struct vcpu *v = &m->vcpus[i];
		if (pthread_create(&v->thread, NULL, vcpu_thread, v)) {
			log_error("cannot start a thread for vCPU %u", i);
			machine_request_exit(m, EXIT_FAILURE_KUMO);
			break;
		}
		v->started = true;
	}
	while (!machine_exiting(m))
		if ((err = evloop_once(loop, -1))) {
			log_error("event loop: %s", strerror(-err));
			machine_request_exit(m, EXIT_FAILURE_KUMO);
		}
	for (unsigned i = 0; i < m->ncpus; i++)
		if (m->vcpus[i].started) {
			m->accel->vcpu_kick(&m->vcpus[i]);
			pthread_join(m->vcpus[i].thread, NULL);
			m->vcpus[i].started = false;
		}
	evloop_del(loop, m->exit_efd);
	evloop_del(loop, m->signal_fd);
	close(m->signal_fd);
	m->signal_fd = -1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	console_close(m->console);
	m->console = NULL;
	return m->exit_status;
}

void machine_destroy(struct machine *m)
{
	for (unsigned i = 0; m->vcpus && i < m->ncpus; i++)
		m->accel->vcpu_destroy(&m->vcpus[i]);
	free(m->vcpus);
	m->vcpus = NULL;
	while (m->nr_owned) {
		struct machine_owned *o = &m->owned[--m->nr_owned];
		o->destroy(o->opaque);
	}
	free(m->owned);
	m->owned = NULL;
	console_close(m->console);
	m->console = NULL;
	if (m->loop_ready)
		evloop_free(&m->loop);
	m->loop_ready = false;
	if (m->accel)
		m->accel->destroy(m);
	guest_mem_free(&m->mem);
	io_bus_free(&m->pio);
	io_bus_free(&m->mmio);
	if (m->exit_efd >= 0)
		close(m->exit_efd);
	m->exit_efd = -1;
}
