/* The status page: a fixed guest-physical page through which tests see the
 * guest (QMP pmemsave, or a migration test reading guest RAM). Layout is
 * ABI: docs/test-guest.md documents it and tests/guest/testguest.py reads
 * it; bump STATUS_VERSION on any change. All fields little-endian. */
#ifndef TESTGUEST_STATUS_H
#define TESTGUEST_STATUS_H

#include <stdint.h>

#define STATUS_GPA       0x9000
#define STATUS_MAGIC     0x53475443u   /* "CTGS" in memory */
#define STATUS_VERSION   3           /* 2: network and disk fields at 0x70; 3: DIMMs at 0xb8, 0x900 */
#define STATUS_MAX_CPUS  32
#define STATUS_CMDLINE_OFF 0xc00
#define STATUS_CMDLINE_MAX 1024
#define STATUS_MAX_DIMMS 16
#define STATUS_DIMM_OFF  0x900

#define STATUS_FLAG_READY     0x1      /* banner printed, CPUs up */
#define STATUS_FLAG_WORKLOAD  0x2      /* workload running */
#define STATUS_FLAG_POWEROFF  0x4      /* power-off requested (button or poweroff_after) */
#define STATUS_FLAG_CRASHED   0x8      /* a CPU took an exception and halted */
#define STATUS_FLAG_MEMHP     0x10     /* memory hotplug controller found, GPE 3 enabled */

#define STATUS_NET_UP    0x1           /* virtio-net driven, stack running */
#define STATUS_NET_DISK  0x2           /* virtio-blk driven, disk service running */

#define STATUS_DIMM_BOOT    0x1        /* present at boot (cold-plugged, or kept over a reset) */
#define STATUS_DIMM_HOTPLUG 0x2        /* announced by an insert event through SCI */

/* One CPU's record (64 bytes). The workload fields are the guest's own
 * account of its slice of the area: see pattern.h. */
struct status_cpu {
    uint32_t apic_id;      /* 0x00 */
    uint32_t online;       /* 0x04 1 once the CPU takes timer ticks */
    uint64_t ticks;        /* 0x08 timer interrupts taken */
    uint64_t slice_first;  /* 0x10 first page (index in the area) of this CPU's slice */
    uint64_t slice_pages;  /* 0x18 pages in the slice */
    uint64_t writes;       /* 0x20 page writes done, round-robin over the slice */
    uint64_t busy_tsc;     /* 0x28 TSC cycles spent handling ticks */
    uint64_t reserved[2];  /* 0x30 */
};

/* One added DIMM (32 bytes). The boot CPU writes its pages round-robin
 * from the first, as a CPU its slice; the header's page index is the
 * page's frame number (gpa / 4096), so a page found at another address
 * does not verify. */
struct status_dimm {
    uint32_t slot;         /* 0x00 hotplug controller slot */
    uint32_t flags;        /* 0x04 STATUS_DIMM_* */
    uint64_t gpa;          /* 0x08 guest-physical base */
    uint64_t pages;        /* 0x10 size in 4 KiB pages */
    uint64_t writes;       /* 0x18 page writes done, round-robin over the DIMM */
};

struct status_page {
    uint32_t magic;            /* 0x00 STATUS_MAGIC */
    uint32_t version;          /* 0x04 STATUS_VERSION */
    uint64_t heartbeat;        /* 0x08 seconds since "ready", counted by the boot CPU */
    uint64_t pages_dirtied;    /* 0x10 sum of all CPUs' writes (updated every second) */
    uint32_t cpus_up;          /* 0x18 CPUs running, boot CPU included */
    uint32_t cpus_found;       /* 0x1c enabled processors in the MP table (1 without one) */
    uint32_t hz;               /* 0x20 settings in effect ... */
    uint32_t interval;         /* 0x24 */
    uint32_t dirty_pages;      /* 0x28 */
    uint32_t dirty_ms;         /* 0x2c */
    uint64_t area_gpa;         /* 0x30 guest-physical start of the workload area */
    uint64_t area_pages;       /* 0x38 its size in 4 KiB pages (0: no workload) */
    uint64_t ram_bytes;        /* 0x40 RAM in the memmap */
    uint32_t poweroff_after;   /* 0x48 */
    uint32_t flags;            /* 0x4c STATUS_FLAG_* */
    uint64_t lapic_hz;         /* 0x50 LAPIC timer frequency used */
    uint64_t tsc_hz;           /* 0x58 TSC frequency measured against the PIT (0: not measured) */
    uint32_t crash_vector;     /* 0x60 exception vector, when STATUS_FLAG_CRASHED */
    uint32_t crash_cpu;        /* 0x64 CPU index that crashed */
    uint64_t crash_rip;        /* 0x68 RIP of the faulting instruction */
    uint64_t net_rx_frames;    /* 0x70 frames received */
    uint64_t net_tx_frames;    /* 0x78 frames sent */
    uint64_t net_rx_dropped;   /* 0x80 malformed, bad checksum, no room */
    uint64_t net_busy_tsc;     /* 0x88 TSC cycles in receive interrupts (boot CPU) */
    uint64_t tcp_accepted;     /* 0x90 TCP connections established */
    uint64_t tcp_retrans;      /* 0x98 retransmission timeouts and fast retransmits */
    uint64_t disk_blocks;      /* 0xa0 virtio-blk capacity, 512-byte blocks (0: no disk) */
    uint32_t net_ip;           /* 0xa8 the guest's IPv4 address */
    uint32_t net_flags;        /* 0xac STATUS_NET_* */
    uint64_t net_tx_dropped;   /* 0xb0 no transmit buffer, or next hop not yet resolved */
    uint32_t dimm_count;       /* 0xb8 valid records in dimm[] (set after the record) */
    uint32_t dimms_seen;       /* 0xbc DIMMs found, those ignored included */
    uint32_t hotplug_scis;     /* 0xc0 SCIs with the memory hotplug GPE (bit 3) set */
    uint32_t dimms_ignored;    /* 0xc4 DIMMs not used: not mapped, no room for a record, bad range */
    uint64_t dimm_writes;      /* 0xc8 sum of the DIMMs' writes (updated every second) */
    uint8_t reserved[0x100 - 0xd0];
    struct status_cpu cpu[STATUS_MAX_CPUS];   /* 0x100 */
    struct status_dimm dimm[STATUS_MAX_DIMMS]; /* 0x900 */
    uint8_t reserved2[STATUS_CMDLINE_OFF - STATUS_DIMM_OFF - STATUS_MAX_DIMMS * 32];
    char cmdline[STATUS_CMDLINE_MAX];         /* 0xc00 the command line, NUL-terminated */
};

_Static_assert(sizeof(struct status_cpu) == 64, "status_cpu layout");
_Static_assert(__builtin_offsetof(struct status_page, cpu) == 0x100, "status_page layout");
_Static_assert(sizeof(struct status_dimm) == 32, "status_dimm layout");
_Static_assert(__builtin_offsetof(struct status_page, dimm) == STATUS_DIMM_OFF, "status_page layout");
_Static_assert(__builtin_offsetof(struct status_page, cmdline) == STATUS_CMDLINE_OFF, "status_page layout");
_Static_assert(sizeof(struct status_page) == 4096, "status_page is one page");

#define STATUS ((volatile struct status_page *)(uintptr_t)STATUS_GPA)

#endif
