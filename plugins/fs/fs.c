#include "ckpt-plugin.h"
