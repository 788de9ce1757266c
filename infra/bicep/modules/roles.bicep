// The identity's data-plane roles, each at the narrowest scope the app allows. No management-plane role: the app
// never lists keys or changes resources.
//
// Storage (scope: the account, because the app creates the jobs table, the dispatch queue and a container per job
// at run time, and the host creates its own containers and the poison queue):
//   Storage Blob Data Owner       host storage (the Functions host documents Owner for AzureWebJobsStorage: leases,
//                                 keys, timer schedules), the deployment package, and the job outputs: create and
//                                 delete `job-<id>` containers, check blobs, and get the user delegation key that
//                                 signs every SAS (generateUserDelegationKey is part of the role, so a separate
//                                 Storage Blob Delegator assignment would add nothing).
//   Storage Queue Data Contributor  the dispatch queue: the app creates it and sends; the host's trigger reads and
//                                 deletes messages and creates and writes `dispatch-poison` (Storage Queue Data
//                                 Message Sender or Message Processor alone cannot create a queue).
//   Storage Table Data Contributor  the jobs table: create it if missing, read, insert, conditional update, delete.
// Key Vault (scope: the vault):
//   Key Vault Secrets User        read secret values: the Key Vault references of the SSH keys and SIMGATE_TARGETS.
// Application Insights (scope: the component):
//   Monitoring Metrics Publisher  send telemetry with Entra ID (local authentication is off).
// And, only when secretsOfficerId is given, for the operator (a person or group, never the app):
//   Key Vault Secrets Officer     write the targets' secrets (docs/deploy.md, "Add a simulator target").

@description('Principal (object) id of the app\'s managed identity.')
param principalId string

@description('Name of the storage account.')
param storageAccountName string

@description('Name of the Key Vault.')
param keyVaultName string

@description('Name of the Application Insights component.')
param appInsightsName string

@description('Object id of the user or group that writes the targets\' secrets (Key Vault Secrets Officer); none if empty.')
param secretsOfficerId string = ''

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsOfficerId)) {
  name: guid(vault.id, secretsOfficerId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: secretsOfficerId
  }
}
