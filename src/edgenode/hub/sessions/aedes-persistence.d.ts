// The package ships types for its in-memory persistence class but no entry for its file.
declare module 'aedes-persistence/asyncPersistence.js' {
  import MemoryPersistence from 'aedes-persistence/types/asyncPersistence.js';
  export default MemoryPersistence;
}
