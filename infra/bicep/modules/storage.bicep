// The one storage account: host storage (AzureWebJobsStorage, identity-based), the jobs table, the dispatch queue
// and its poison queue, the Flex Consumption deployment container, and the job outputs (a container per job,
// `job-<job id>`, made and removed by the app at run time). Shared keys are off: every caller is an Entra ID
// principal, and every SAS the app hands out is a user-delegation SAS.

@description('Storage account name: 3 to 24 lower-case letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags for every resource.')
param tags object

@description('Replication: geo- and zone-redundant by default; the dev parameters file takes Standard_LRS.')
@allowed([
  'Standard_GZRS'
  'Standard_RAGZRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_LRS'
])
param skuName string = 'Standard_GZRS'

@description('Blob container the Flex Consumption platform deploys the app package from.')
param deploymentContainerName string

@description('Table holding the jobs (SIMGATE_JOBS_TABLE).')
param jobsTableName string

@description('Table holding the studies (SIMGATE_STUDIES_TABLE); their runs are jobs.')
param studiesTableName string

@description('Queue POST /job/{id} writes to; the host names its poison queue "<queue>-poison".')
param dispatchQueueName string

@description('Days a deleted blob or container (job outputs included) can still be restored.')
@minValue(1)
@maxValue(365)
param deleteRetentionDays int = 7

@description('Log Analytics workspace receiving the storage services\' request logs.')
param workspaceId string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    // checkov:skip=CKV_AZURE_35: the network stays open by design: users download outputs straight from blob storage with read SAS URLs from their browsers, and the simulators (HPC clusters on networks of their own) upload them with the upload grant; without VNet integration the Flex Consumption app also reaches storage over the public endpoint. Access is by Entra ID and user-delegation SAS only (shared keys off, no anonymous access).
    // checkov:skip=CKV_AZURE_59: see CKV_AZURE_35: public network access is how browsers and simulators reach the outputs; no request is served without an Entra ID token or a user-delegation SAS.
    // checkov:skip=CKV_AZURE_206: replication is the parameter skuName, geo-redundant (Standard_GZRS) unless an environment's parameters file picks less (dev: Standard_LRS); Checkov reads the parameter's name, not its value.
    accessTier: 'Hot'
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    isLocalUserEnabled: false
    isSftpEnabled: false
    isHnsEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: deleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource dispatchQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: dispatchQueueName
}

resource dispatchPoisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: '${dispatchQueueName}-poison'
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource jobsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: jobsTableName
}

resource studiesTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: studiesTableName
}

// Request logs (who read, wrote or deleted what) for each service, kept in Log Analytics.
resource blobLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-logs'
  scope: blobService
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

resource queueLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-logs'
  scope: queueService
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

resource tableLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'storage-logs'
  scope: tableService
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

output id string = account.id
output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
output deploymentContainerName string = deploymentContainer.name
output jobsTableName string = jobsTable.name
output studiesTableName string = studiesTable.name
output dispatchQueueName string = dispatchQueue.name
output dispatchPoisonQueueName string = dispatchPoisonQueue.name
