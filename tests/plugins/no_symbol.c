/* SPDX-License-Identifier: GPL-2.0-only */
/* Test plugin that exports no descriptor (built with hidden visibility). */
#include "ckpt-plugin.h"

int no_symbol_dummy(void);

int no_symbol_dummy(void)
{
	return 0;
}
