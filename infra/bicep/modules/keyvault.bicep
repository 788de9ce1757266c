// Key Vault (RBAC mode) for the simulator targets: the SSH private keys (one secret per key, each referenced by the
// app setting a target's `key_setting` names) and SIMGATE_TARGETS itself, whose `known_hosts` pin the targets' host
// keys. The template creates no secret: operators put them in with `az keyvault secret set` (docs/deploy.md), so no
// key ever passes through a deployment's parameters or history.

@description('Key Vault name: 3 to 24 letters, digits and dashes, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Log Analytics workspace receiving the vault\'s audit log.')
param workspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    // checkov:skip=CKV_AZURE_109: the vault stays reachable from public networks because App Service resolves the Key Vault references of an app without VNet integration over them; every request still needs an Entra ID token and an RBAC role on this vault (the app's identity holds Key Vault Secrets User only).
    // checkov:skip=CKV_AZURE_189: see CKV_AZURE_109: no private endpoint without VNet integration; access is RBAC-only.
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Who read which secret, kept in Log Analytics.
resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'vault-audit'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      { categoryGroup: 'audit', enabled: true }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
