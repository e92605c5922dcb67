/* SPDX-License-Identifier: GPL-2.0-only */
/* linux/kfd_ioctl.h includes <drm/drm.h>; on systems whose kernel headers
 * lack it, libdrm's copy (in libdrm_amdgpu's include path) stands in.  Used
 * only when the build finds no drm/drm.h (meson.build). */
#include <drm.h>
