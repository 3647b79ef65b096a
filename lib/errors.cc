// Anchor translation unit so the library has at least one source.
#include "errors.h"
