module zfaas/bridge

go 1.19
