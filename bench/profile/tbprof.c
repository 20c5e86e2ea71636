// SPDX-License-Identifier: GPL-2.0
/*
 * A qemu TCG plugin that counts the executions of every translation block
 * of the guest kernel (addresses from 0xffffffff80000000 up) and writes
 * "PC INSNS COUNT" lines, in hex, decimal and decimal, at exit.
 *
 * Usage: qemu-system-x86_64 ... -plugin tbprof.so,out=FILE
 *
 * Written against the plugin API of QEMU 7.2 (version 1): only the few
 * functions used here are declared, as Debian ships no qemu-plugin.h.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb_t)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb_t)(qemu_plugin_id_t, void *);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb_t);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *,
					      enum qemu_plugin_op, void *,
					      uint64_t);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb_t, void *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define KERNEL_START	0xffffffff80000000ull
#define NR_SLOTS	(1u << 22)	/* open addressing, never full */

struct block {
	uint64_t key;		/* pc ^ insns << 56, 0 if free */
	uint64_t pc;
	uint64_t insns;
	uint64_t count;		/* added to by the translated code */
};

static struct block *blocks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *out_path = "tbprof.out";

static struct block *block_of(uint64_t pc, uint64_t insns)
{
	uint64_t key = pc ^ insns << 56;
	uint64_t h = (key * 0x9e3779b97f4a7c15ull) >> 42;
	struct block *b;

	for (;; h++) {
		b = &blocks[h & (NR_SLOTS - 1)];
		if (!b->key || b->key == key)
			break;
	}
	b->key = key;
	b->pc = pc;
	b->insns = insns;
	return b;
}

static void translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	uint64_t pc = qemu_plugin_tb_vaddr(tb);
	struct block *b;

	if (pc < KERNEL_START)
		return;
	pthread_mutex_lock(&lock);
	b = block_of(pc, qemu_plugin_tb_n_insns(tb));
	pthread_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64,
						 &b->count, 1);
}

static void write_out(qemu_plugin_id_t id, void *data)
{
	FILE *f = fopen(out_path, "w");
	unsigned int i;

	if (!f)
		return;
	for (i = 0; i < NR_SLOTS; i++)
		if (blocks[i].count)
			fprintf(f, "%llx %llu %llu\n",
				(unsigned long long)blocks[i].pc,
				(unsigned long long)blocks[i].insns,
				(unsigned long long)blocks[i].count);
	fclose(f);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const struct qemu_info_t *info,
			int argc, char **argv)
{
	if (argc > 0 && !strncmp(argv[0], "out=", 4))
		out_path = strdup(argv[0] + 4);
	blocks = calloc(NR_SLOTS, sizeof(*blocks));
	if (!blocks)
		return -1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translate);
	qemu_plugin_register_atexit_cb(id, write_out, NULL);
	return 0;
}
